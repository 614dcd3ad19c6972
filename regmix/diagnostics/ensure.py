"""Which records the figures of a set of runs need, and computing the ones that are missing.

`ensure_records(paths, ...)` is the computing half of `regmix figures` (and of notebook 05): it writes
each missing record into its run's RUN/diagnostics/ and returns where every record is.
`record_paths(paths)` is the reading half: the same records, computed by nobody; viz draws from it.
Keeping both here means one place decides which records a figure set is made of.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional

from ..attacks.specs import parse_attack
from ..progress import progress_bar
from ..registry import ConfigError
from ..rundir import RunDir
from ..runtime import resolve_device
from ..sources import ExternalModel, read_source_card
from . import compute

SWEEP_SPEC = "sweep.json"  # written by regmix.sweep into a sweep folder (not a run directory)


@dataclass
class RecordSet:
    """The run directories and sweep folders given, and the record paths of each diagnostic."""
    runs: List[Path]
    sweeps: List[Path]
    weight: List[Path] = field(default_factory=list)
    input: List[Path] = field(default_factory=list)
    interp: List[Path] = field(default_factory=list)
    softmax: List[Path] = field(default_factory=list)

    def all(self) -> List[Path]:
        return [*self.weight, *self.input, *self.interp, *self.softmax]

    def missing(self) -> List[Path]:
        return [p for p in self.all() if not p.exists()]

    def require(self) -> "RecordSet":
        """Self, or one line naming the first missing record and how to make it."""
        missing = self.missing()
        if missing:
            more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
            raise ConfigError(f"runs: no record {missing[0]}{more}; compute the records first with "
                              f"regmix.diagnostics.ensure_records(runs) or `regmix figures`")
        return self


def is_sweep(path: Path) -> bool:
    """A sweep folder: it has sweep.json, or it is not a run itself but holds runs."""
    if read_source_card(path) is not None:
        return False
    if (path / SWEEP_SPEC).exists():
        return True
    return not RunDir(path).is_run() and any(RunDir(p).is_run() for p in path.iterdir() if p.is_dir())


def split_paths(paths) -> tuple:
    """(runs, sweep folders) of the given items. A run is a finished run directory (it has its best
    checkpoint), a loaded model source (regmix.sources.ExternalModel: a RobustBench, TorchScript or
    in-memory model), or the record folder of such a model (runs/external/<name>, with its
    source.json), whose records can be read but not computed again."""
    items = [p if isinstance(p, ExternalModel) else Path(p) for p in paths]
    if not items:
        raise ConfigError("runs: give at least one run directory or sweep folder")
    for p in items:
        if not isinstance(p, ExternalModel) and not p.is_dir():
            raise ConfigError(f"runs: {p} is not a directory (a run directory or a sweep folder)")
    sweeps = [p for p in items if not isinstance(p, ExternalModel) and is_sweep(p)]
    runs = [p for p in items if not any(p is s for s in sweeps)]
    for r in runs:
        if not isinstance(r, ExternalModel) and not RunDir(r).checkpoint("best").exists() \
                and read_source_card(r) is None:
            raise ConfigError(f"runs: {r} has no best checkpoint (not a finished run directory)")
    return runs, sweeps


def method_name(run) -> str:
    if isinstance(run, ExternalModel):
        return run.config.method.name
    card = read_source_card(run)
    if card:
        if not isinstance(card.get("method"), str):
            raise ConfigError(f"runs: {run}: its source.json names no method")
        return card["method"]
    method = RunDir(run).read_config().get("method")
    if not isinstance(method, dict) or not isinstance(method.get("name"), str):
        raise ConfigError(f"runs: {RunDir(run).config_path} names no method")
    return method["name"]


def interp_pairs(runs) -> list:
    """(A, B) pairs to interpolate: pgk -> regmix when both are there (the paper's comparison),
    else the first run to each other one."""
    methods = {r: method_name(r) for r in runs}
    pgk = [r for r in runs if methods[r] == "pgk"]
    reg = [r for r in runs if methods[r] == "regmix"]
    if pgk and reg:
        return [(pgk[0], r) for r in reg]
    return [(runs[0], r) for r in runs[1:]]


def record_paths(paths) -> RecordSet:
    """Where every record of the figure set lives (whether or not it exists yet)."""
    runs, sweeps = split_paths(paths)
    return RecordSet(runs, sweeps,
                     weight=[compute.default_path(r, "weight") for r in runs],
                     input=[compute.default_path(r, "input") for r in runs],
                     interp=[compute.default_path(a, "interp", b) for a, b in interp_pairs(runs)] if len(runs) > 1
                     else [],
                     softmax=[compute.default_path(r, "softmax") for r in runs])


def check_options(*, grid: int = 11, n: int = 256, attack: str = "pgd10", examples: int = 8,
                  hessian_iters: int = 20, device="auto") -> None:
    """ensure_records' options checked (one line naming the first bad one), before any model is loaded."""
    for name, value, minimum in (("grid", grid, 3), ("n", n, 1), ("examples", examples, 1),
                                 ("hessian_iters", hessian_iters, 0)):
        compute.check_int(name, value, minimum)
    parse_attack(attack, "attack")
    resolve_device(device)


def ensure_records(paths, *, grid: int = 11, n: int = 256, attack: str = "pgd10", examples: int = 8,
                   hessian_iters: int = 20, recompute: bool = False, device="auto", log=print,
                   progress: Optional[bool] = None, data_dir=None) -> RecordSet:
    """Compute every record of the figure set that is missing (all of them with recompute=True).

    grid: landscape points per axis (>= 3; the input landscape uses at least 11, the interpolation
    grid + 4 points); n: points of the fixed test subset (the softmax record uses at least 512);
    attack: of the adversarial landscapes; examples: of the input landscape; hessian_iters: power
    iterations (0: skip). Records that exist are reused: their own settings are in their meta.
    progress: a bar over the records computed (None: in a terminal or notebook only). data_dir: where
    the dataset lives (default: each run's own data_dir)."""
    check_options(grid=grid, n=n, attack=attack, examples=examples, hessian_iters=hessian_iters, device=device)
    records = record_paths(paths)
    runs = records.runs
    makers = [(path, lambda out, r=r: compute.weight_landscape_record(
                  r, grid=grid, n=n, attack=attack, hessian_iters=hessian_iters, device=device, out=out,
                  data_dir=data_dir))
              for path, r in zip(records.weight, runs)]
    makers += [(path, lambda out, r=r: compute.input_landscape_record(
                   r, grid=max(grid, 11), examples=examples, device=device, out=out, data_dir=data_dir))
               for path, r in zip(records.input, runs)]
    makers += [(path, lambda out, a=a, b=b: compute.interp_record(
                   a, b, steps=grid + 4, n=n, attack=attack, device=device, out=out, data_dir=data_dir))
               for path, (a, b) in zip(records.interp, interp_pairs(runs) if records.interp else [])]
    makers += [(path, lambda out, r=r: compute.softmax_run_record(r, n=max(n, 512), device=device, out=out,
                                                                       data_dir=data_dir))
               for path, r in zip(records.softmax, runs)]
    todo = [(path, make) for path, make in makers if recompute or not path.exists()]
    bar = progress_bar(len(todo), "records", progress, unit="record")
    for path, make in todo:
        log(f"computing {path}")
        make(out=path)
        bar.update(1)
    bar.close()
    return records
