"""Which runs the notebooks show: the study's seed-0 runs and alpha x beta sweep first (full profile),
then the demo's, then their own; the quick (ci) profile never picks up the study."""
from pathlib import Path

from regmix.rundir import RunDir
from viz import notebook as nb


def _finished_run(path: Path) -> Path:
    run = RunDir(path)
    path.mkdir(parents=True)
    run.write_status("complete")
    run.checkpoint("best").write_bytes(b"")  # found, never loaded here
    return path


def test_the_study_run_comes_before_the_demo_run_in_the_full_profile(tmp_path, monkeypatch):
    monkeypatch.setenv("REGMIX_RUNS", str(tmp_path))
    study = _finished_run(tmp_path / "study-mnist5k" / "runs" / "regmix-seed0")
    demo = _finished_run(tmp_path / "demo" / "regmix")
    quiet = lambda *a: None  # noqa: E731
    assert nb.ensure_run("regmix", nb.profile("full"), log=quiet) == study
    assert nb.ensure_run("regmix", nb.profile("ci"), log=quiet) == demo


def test_the_study_sweep_is_the_explorers_sweep_once_it_has_four_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("REGMIX_RUNS", str(tmp_path))
    sweep = tmp_path / "study-mnist5k" / "sweeps" / "alpha_beta"
    for i in range(4):
        _finished_run(sweep / f"regmix-alpha_beta-alpha{i}-seed0")
    assert nb.ensure_sweep(nb.profile("full"), log=lambda *a: None) == sweep
