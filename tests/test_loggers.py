import importlib.util

import pytest

from regmix.loggers import check_loggers, create_loggers, scalars
from regmix.registry import ConfigError

STEP = {"kind": "step", "epoch": 0, "step": 3, "lr": 0.01, "loss": 1.5, "amr": 0.25}
EPOCH = {"kind": "epoch", "epoch": 0, "step": 4, "lr": 0.01, "train_loss": 1.25, "eps": 0.1,
         "val_clean": 0.9, "val_pgd": 0.4, "skipped_steps": 0, "note": "text", "per_class": [1, 2],
         "flag": True, "nested": {"a": 2.0, "b": "x"}, "missing": None}


def test_tags_of_step_and_epoch_records():
    assert scalars(STEP) == {"train/lr": 0.01, "train/loss": 1.5, "train/amr": 0.25}
    assert scalars(EPOCH) == {"epoch/lr": 0.01, "train_epoch/loss": 1.25, "epoch/eps": 0.1, "val/clean": 0.9,
                              "val/pgd": 0.4, "epoch/skipped_steps": 0.0, "epoch/nested/a": 2.0}


def test_unknown_logger_names_the_field_and_suggests():
    with pytest.raises(ConfigError, match=r"train\.loggers: unknown logger 'tensorbord' \(did you mean 'tensorboard'\?\)"):
        check_loggers(["tensorbord"])
    with pytest.raises(ConfigError, match="named twice"):
        check_loggers(["tensorboard", "tensorboard"])
    assert check_loggers([]) == [] and create_loggers([], "unused") == []


def test_missing_package_says_which_extra(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mlflow" else real(name, *a))
    with pytest.raises(ConfigError, match=r"train\.loggers: 'mlflow' needs the mlflow package: pip install 'regmix\[mlflow\]'"):
        check_loggers(["mlflow"])


def _read_scalars(log_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    acc = EventAccumulator(str(log_dir), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def test_tensorboard_event_file_holds_the_records(tmp_path):
    pytest.importorskip("tensorboard")
    (logger,) = create_loggers(["tensorboard"], tmp_path)
    for step in (1, 2, 3):
        logger.log({**STEP, "step": step, "loss": 2.0 - step / 4})
    logger.log(EPOCH)
    logger.close()
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    tb = _read_scalars(tmp_path / "tensorboard")
    assert [s for s, _ in tb["train/loss"]] == [1, 2, 3]
    assert [v for _, v in tb["train/loss"]] == pytest.approx([1.75, 1.5, 1.25])
    assert tb["val/pgd"] == [(4, pytest.approx(0.4))]
    assert tb["val/clean"] == [(4, pytest.approx(0.9))]
    assert tb["train_epoch/loss"] == [(4, pytest.approx(1.25))]
    assert "epoch/note" not in tb and "epoch/flag" not in tb


def test_tensorboard_resume_drops_the_events_after_the_checkpoint(tmp_path):
    pytest.importorskip("tensorboard")
    (first,) = create_loggers(["tensorboard"], tmp_path)
    for step in (1, 2, 3, 4):
        first.log({"kind": "step", "step": step, "loss": float(step)})
    first.close()  # the process died after step 4; the checkpoint it resumes from is at step 2
    (second,) = create_loggers(["tensorboard"], tmp_path, start_step=2)
    for step in (3, 4):
        second.log({"kind": "step", "step": step, "loss": 10.0 * step})
    second.close()
    tb = _read_scalars(tmp_path / "tensorboard")
    assert tb["train/loss"] == [(1, 1.0), (2, 2.0), (3, 30.0), (4, 40.0)]


@pytest.mark.skipif(importlib.util.find_spec("mlflow") is None, reason="mlflow is not installed (regmix[mlflow])")
def test_mlflow_local_store_holds_the_records(tmp_path):
    from mlflow.tracking import MlflowClient
    (logger,) = create_loggers(["mlflow"], tmp_path)
    logger.log({**STEP, "step": 1})
    logger.log(EPOCH)
    logger.close()
    client = MlflowClient(tracking_uri=f"sqlite:///{(tmp_path / 'mlflow.db').resolve()}")
    history = client.get_metric_history(logger.run_id, "val/pgd")
    assert [(m.step, m.value) for m in history] == [(4, pytest.approx(0.4))]
    assert [(m.step, m.value) for m in client.get_metric_history(logger.run_id, "train/loss")] == [(1, 1.5)]
    # a resumed run appends to the same MLflow run
    (again,) = create_loggers(["mlflow"], tmp_path, start_step=4)
    again.log({"kind": "step", "step": 5, "loss": 0.5})
    again.close()
    assert again.run_id == logger.run_id
    assert [(m.step, m.value) for m in client.get_metric_history(logger.run_id, "train/loss")] == [(1, 1.5), (5, 0.5)]
