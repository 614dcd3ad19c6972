"""What the notebooks share: the settings profile (REGMIX_PROFILE=ci for a quick run, full otherwise)
and finding or training the runs they show.

Runs are looked up before anything trains. In the full profile, the `regmix study mnist5k` run of
seed 0 (runs/study-mnist5k/runs/<method>-seed0) comes first, and its alpha x beta sweep
(runs/study-mnist5k/sweeps/alpha_beta) is the explorers' sweep; then a finished `regmix demo` run
(runs/demo/<method>), then one the notebooks trained earlier under runs/notebooks-<profile>/; else it
is trained there. REGMIX_RUNS moves the whole runs folder (tests point it at a temporary directory).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from regmix.rundir import RunDir


STUDY = "study-mnist5k"   # `regmix study mnist5k`'s folder under the runs folder


@dataclass(frozen=True)
class Profile:
    name: str
    epochs: int | None        # None: the demo recipe's own epoch count
    grid: int                 # landscape resolution
    n: int                    # test points for landscapes and softmax records
    examples: int             # test examples shown by the explorers
    hessian_iters: int
    finetune_steps: int
    sweep_grid: tuple         # ("alpha=...", "beta=...") for regmix.sweep
    sweep_epochs: int | None
    eval_points: int | None   # validation points per epoch while training (None: all)
    paper_methods: tuple      # the runs 05_paper_figures compares

    @property
    def note(self) -> str:
        """What the profile's numbers are for, said on screen where the notebook shows its profile."""
        if self.name == "ci":
            return (f"quick profile (REGMIX_PROFILE=ci): {self.epochs}-epoch runs on {self.eval_points} validation "
                    f"points, {self.grid}x{self.grid} landscapes. Its numbers only check that this notebook runs; "
                    "they are not results (the full profile, or the study in docs/results, gives those).")
        return ("full profile: the demo recipes as they are (one seed each); the study's five-seed numbers "
                "are in docs/results.")

    def __repr__(self) -> str:
        return f"Profile({self.name!r}): {self.note}"

    def _repr_html_(self) -> str:
        color = "#D55E00" if self.name == "ci" else "#333"
        return f"<div style='border-left:4px solid {color};padding-left:8px'><b>{self.name}</b>: {self.note}</div>"


PROFILES = {
    # seconds per notebook on two CPU cores: what CI executes
    "ci": Profile("ci", epochs=2, grid=5, n=64, examples=4, hessian_iters=3, finetune_steps=4,
                  sweep_grid=("alpha=0.5,1", "beta=0.5"), sweep_epochs=2, eval_points=100,
                  paper_methods=("pgk", "regmix")),
    # the demo recipes as they are; minutes per run
    "full": Profile("full", epochs=None, grid=21, n=512, examples=6, hessian_iters=20, finetune_steps=60,
                    sweep_grid=("alpha=0,0.5,1,2", "beta=0,0.5,1"), sweep_epochs=None, eval_points=None,
                    paper_methods=("standard", "pgd_at", "pgk", "regmix")),
}


def profile(name: str | None = None) -> Profile:
    name = name or os.environ.get("REGMIX_PROFILE", "full")
    if name not in PROFILES:
        raise ValueError(f"REGMIX_PROFILE: must be one of {', '.join(PROFILES)}, got {name!r}")
    return PROFILES[name]


def project_root(start: Path | None = None) -> Path:
    """The checkout that holds configs/demo: notebooks run with notebooks/ as their working directory."""
    if os.environ.get("REGMIX_ROOT"):  # a notebook copied elsewhere (the browser test) finds its checkout
        return Path(os.environ["REGMIX_ROOT"])
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "configs" / "demo").is_dir():
            return folder
    raise FileNotFoundError(f"no configs/demo/ above {here}: open the notebooks from a regmix checkout")


def runs_root() -> Path:
    root = os.environ.get("REGMIX_RUNS")
    return Path(root) if root else project_root() / "runs"


def figures_dir(prof: Profile | None = None) -> Path:
    """figures/ of the checkout for full runs; quick (ci) runs keep theirs beside their runs."""
    prof = prof or profile()
    return project_root() / "figures" if prof.name == "full" else runs_root() / f"notebooks-{prof.name}" / "figures"


def is_complete(run_dir: Path) -> bool:
    run = RunDir(run_dir)
    return run.is_complete() and run.checkpoint("best").exists()


def _overrides(prof: Profile, out_dir: Path, name: str) -> list:
    # training progress stays on: tqdm.auto draws a widget bar in a notebook and a text bar in a terminal
    over = [f"out_dir={out_dir}", f"name={name}"]
    if prof.epochs is not None:
        # the eps ramp must end inside a short run, else the run never sees the full eps
        over += [f"train.epochs={prof.epochs}", f"train.eps_warmup_epochs={max(prof.epochs - 1, 0)}",
                 f"schedule.milestones=[{prof.epochs}]"]
    if prof.eval_points is not None:
        over.append(f"eval.max_points={prof.eval_points}")
    if prof.name == "ci":
        # the recipes' EMA (decay 0.999) barely leaves the initial weights in a few dozen steps
        over.append("train.ema_decay=0.9")
    return over


def ensure_run(method: str, prof: Profile | None = None, log=print) -> Path:
    """A finished run of a demo recipe: reused when one exists, trained otherwise."""
    prof = prof or profile()
    root = runs_root()
    study = [root / STUDY / "runs" / f"{method}-seed0"] if prof.name == "full" else []
    for candidate in (*study, root / "demo" / method, root / f"notebooks-{prof.name}" / method):
        if is_complete(candidate):
            log(f"reusing {candidate}")
            return candidate
    from regmix.config import load_config
    from regmix.trainer import train
    recipe = project_root() / "configs" / "demo" / f"{method}.yaml"
    out_dir = root / f"notebooks-{prof.name}"
    config = load_config(recipe, _overrides(prof, out_dir, method))
    log(f"training {method} into {config.run_dir} ({config.train.epochs} epochs)")
    return Path(train(config, resume=RunDir(config.run_dir).checkpoint("last").exists()))


def ensure_runs(methods, prof: Profile | None = None, log=print) -> dict:
    return {m: ensure_run(m, prof, log) for m in methods}


def ensure_sweep(prof: Profile | None = None, log=print) -> Path:
    """An alpha x beta sweep: the study's (full profile, at least four finished runs), else one of the
    regmix demo recipe (finished runs are skipped by regmix.sweep)."""
    prof = prof or profile()
    study = runs_root() / STUDY / "sweeps" / "alpha_beta"
    if prof.name == "full" and study.is_dir() and sum(is_complete(p) for p in study.iterdir()) >= 4:
        log(f"reusing the study's alpha x beta sweep {study}")
        return study
    from regmix.sweep import parse_grid, sweep
    out_dir = runs_root() / f"notebooks-{prof.name}" / "sweep-regmix"
    extra = [o for o in _overrides(prof, out_dir, "sweep") if not o.startswith(("out_dir=", "name="))]
    if prof.sweep_epochs is not None:
        extra = [o for o in extra if not o.startswith(("train.epochs=", "train.eps_warmup", "schedule.milestones"))]
        extra += [f"train.epochs={prof.sweep_epochs}", f"train.eps_warmup_epochs={max(prof.sweep_epochs - 1, 0)}",
                  f"schedule.milestones=[{prof.sweep_epochs}]"]
    sweep(project_root() / "configs" / "demo" / "regmix.yaml", parse_grid(prof.sweep_grid), (0,), out_dir=out_dir,
          extra_overrides=extra, log=lambda *_: None)
    log(f"sweep records in {out_dir}")
    return out_dir
