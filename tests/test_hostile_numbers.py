"""Every number of a config, a suite or a flag is finite and inside its documented range, refused with
one line (exit 2) before any folder is created. Issue 24, classes 'non-finite numbers' and 'unbounded
work'. The ranges live in regmix/checks.py (limits), config_ranges.NUMBER_RANGES, methods/base.OPTION_RANGES,
models.OPTION_RANGES, diagnostics/compute.LIMITS."""
import dataclasses
import json
import math
import re
import typing
from pathlib import Path

import pytest
import yaml

import regmix.config as C
from regmix.config_ranges import NUMBER_RANGES
from regmix.checks import check_number
from regmix.cli import main
from regmix.config import load_config
from regmix.methods.base import OPTION_RANGES
from regmix.registry import ConfigError
from regmix.study import load_suite

ROOT = Path(__file__).resolve().parent.parent
RECIPE = {"name": "r", "data": {"name": "digits", "batch_size": 32}, "model": {"name": "small_cnn", "options": {"width": 8}},
          "threat": {"eps": 0.1, "step": 0.1, "steps": 2}, "method": {"name": "regmix", "options": {"reset_every": 2}},
          "train": {"epochs": 2, "progress": False}}


def refused(capsys, argv, field, where: Path):
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and field in err and "Traceback" not in err, err
    assert not where.exists() or not any(where.iterdir()), sorted(where.rglob("*"))


@pytest.mark.parametrize("override,field", [
    # NaN and infinity, which pass a `value < 0` check
    ("method.options.alpha=.nan", "method.options.alpha"), ("method.options.alpha=.inf", "method.options.alpha"),
    ("method.options.beta=-.inf", "method.options.beta"), ("method.options.temperature=.inf", "method.options.temperature"),
    ("method.options.momentum=.nan", "method.options.momentum"), ("method.options.true_class_target=.nan", "true_class_target"),
    ("threat.step=.nan", "threat.step"), ("threat.eps=.nan", "threat.eps"), ("threat.eps=.inf", "threat.eps"),
    ("eval.eps=.inf", "eval.eps"), ("eval.step=.nan", "eval.step"), ("optim.lr=.nan", "optim.lr"),
    ("optim.momentum=.nan", "optim.momentum"), ("schedule.gamma=.nan", "schedule.gamma"),
    ("schedule.warmup_epochs=.inf", "schedule.warmup_epochs"), ("schedule.milestones=[.nan]", "schedule.milestones"),
    ("train.ema_decay=.nan", "train.ema_decay"), ("model.options.width=.nan", "model.options.width"),
    ("threat.eps='1/0'", "threat.eps"),
    # unbounded work and values past their range
    ("eval.steps=1000000000", "eval.steps"), ("threat.steps=1000000000", "threat.steps"),
    ("method.options.attack_steps=1000000000", "method.options.attack_steps"),
    ("method.options.reset_every=0", "method.options.reset_every"), ("train.epochs=1000000000", "train.epochs"),
    ("eval.max_points=1000000000000", "eval.max_points"), ("data.batch_size=1000000000000", "data.batch_size"),
    ("schedule.warmup_epochs=50", "schedule.warmup_epochs"), ("model.options.width=100000000", "model.options.width"),
    ("model.options.widht=8", "model.options.widht"), ("method.options.alpha=1e9", "method.options.alpha"),
])
def test_a_bad_number_is_one_line_and_no_folder(tmp_path, capsys, override, field):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump(RECIPE))
    refused(capsys, ["train", "--config", str(recipe), "--out-dir", str(tmp_path / "runs"), "--set", override],
            field, tmp_path / "runs")


def float_fields():
    """Every float (or Any: eps/step) field of every config section."""
    for section in dataclasses.fields(C.Config):
        if not dataclasses.is_dataclass(section.type if not isinstance(section.type, str) else getattr(C, section.type, None)):
            continue
        cls = getattr(C, section.type) if isinstance(section.type, str) else section.type
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            kind = hints[f.name]
            if kind in (float, typing.Optional[float]) or (kind is typing.Any and f.name in ("eps", "step")):
                yield f"{section.name}.{f.name}"


@pytest.mark.parametrize("field", list(float_fields()))
@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_every_float_field_of_the_config_refuses_nan_and_infinity(field, value):
    section, key = field.split(".")
    data = json.loads(json.dumps(RECIPE))
    data.setdefault(section, {})[key] = value
    with pytest.raises(ConfigError, match=rf"^{re.escape(field)}: "):
        load_config(data=data)


@pytest.mark.parametrize("row", NUMBER_RANGES, ids=[r[0] for r in NUMBER_RANGES])
def test_every_ranged_field_refuses_its_bounds_and_nan(row):
    field, lo, hi, options = row
    section, key = field.split(".")
    beyond = [hi + 1 if options.get("integer") else hi * 2 + 1, lo - 1]
    if not options.get("integer"):
        beyond.append(float("nan"))
    for value in beyond:
        data = json.loads(json.dumps(RECIPE))
        data.setdefault(section, {})[key] = value
        with pytest.raises(ConfigError, match=rf"^{re.escape(field)}: "):
            load_config(data=data)


@pytest.mark.parametrize("option", sorted(OPTION_RANGES))
def test_every_ranged_method_option_refuses_its_bounds(option):
    from regmix.methods import create_method
    from regmix.threat import ThreatModel
    lo, hi, kw = OPTION_RANGES[option]
    method = "fgsm_rs" if option == "step_ratio" else "regmix"
    for value in (hi + 1 if kw.get("integer") else hi * 2 + 1, lo - 1, float("nan")):
        with pytest.raises(ConfigError, match=rf"^method.options.{option}: "):
            create_method(method, ThreatModel("linf", 0.1), **{option: value})


def test_check_number_is_the_one_range_check():
    assert check_number("f", 3, 1, 5, integer=True) == 3
    for bad, kw in [(float("nan"), {}), (math.inf, {}), (True, {}), ("3", {}), (3.0, {"integer": True}),
                    (0, {"lo_open": True}), (5, {"hi_open": True}), (6, {})]:
        with pytest.raises(ConfigError, match="^f: must be"):
            check_number("f", bad, 0, 5, **kw)
    assert check_number("f", None, 0, 1, none_ok=True) is None


@pytest.mark.parametrize("argv,field", [
    (["eval", "RUN", "--restarts", "1000000000"], "--restarts"), (["eval", "RUN", "--n", "1000000000000"], "--n"),
    (["eval", "RUN", "--eps", "nan"], "--eps"), (["eval", "RUN", "--step", "inf"], "--step"),
    (["eval", "RUN", "--batch-size", "1000000000000"], "--batch-size"), (["eval", "RUN", "--attacks", "pgd1000000000"], "attacks"),
    (["landscape", "RUN", "--grid", "100000"], "--grid"), (["landscape", "RUN", "--span", "nan"], "--span"),
    (["landscape", "RUN", "--hessian-iters", "1000000000"], "--hessian-iters"),
    (["figures", "RUN", "--grid", "100000"], "--grid"), (["figures", "RUN", "--n", "100000000000"], "--n"),
])
def test_a_bad_flag_is_one_line_before_any_model_is_loaded(tmp_path, capsys, monkeypatch, argv, field):
    monkeypatch.chdir(tmp_path)  # RUN does not exist: the flag is refused before the source is looked at
    refused(capsys, argv, field, tmp_path)


@pytest.mark.parametrize("edit,field", [
    (("n: 64", "n: 1000000000000"), r"whole\.n"), (("eps_scale: 2}", "eps_scale: .inf}"), "eps_scale"),
    (("cost: {train: {standard: 2,", "cost: {train: {standard: .nan,"), r"smoke\.cost\.train\.standard"),
    (("hessian_iters: 2}", "hessian_iters: 1000000000}"), "hessian_iters"),
    (("softmax: {n: 16}", "softmax: {n: .nan}"), r"softmax\.n"),
])
def test_a_bad_number_in_a_suite_is_refused(tmp_path, edit, field):
    text = (ROOT / "configs/study/mnist5k.yaml").read_text().replace(" mnist5k/", f" {ROOT}/configs/study/mnist5k/")
    assert edit[0] in text
    bad = tmp_path / "s.yaml"
    bad.write_text(text.replace(edit[0], edit[1], 1))
    with pytest.raises(ConfigError, match=field):
        load_suite(str(bad), smoke=True)

