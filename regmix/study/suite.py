"""A study suite: configs/study/<suite>.yaml read and checked (recipes, seeds, evaluations, cost table,
smoke variant, sweeps), before any work starts."""
from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

from ..attacks.specs import parse_attacks
from ..checks import MAX_GRID, MAX_ITERS, MAX_POINTS, check_number, in_range, plain_name
from ..recipes import RECIPES
from ..registry import ConfigError, suggest
from ..yaml_text import load_yaml_text

SUITES_DIR = RECIPES / "study"
SUITE_KEYS = ("suite", "description", "device", "recipes", "seeds", "evals", "cost", "smoke", "sweeps", "diagnostics")
EVAL_KEYS = ("attacks", "n", "seeds", "checkpoint", "sanity", "eps_scale")
SMOKE_KEYS = ("seeds", "overrides", "evals", "cost", "sweeps", "diagnostics")
# diagnostics records of every main run: the weight landscape (with Hessian) and the softmax record
DIAGNOSTIC_KEYS = {"weight": ("grid", "n", "attack", "hessian_iters"), "softmax": ("n",)}
LIMITS = {"grid": MAX_GRID, "n": MAX_POINTS}   # of the diagnostics options (hessian_iters: MAX_ITERS)
SWEEP_KEYS = ("method", "grid", "variants", "seeds", "evals", "diagnostics")


@dataclass
class EvalSpec:
    name: str
    attacks: str
    n: Optional[int] = None          # None: the whole test split
    seeds: str = "all"               # all | first (the suite's first seed only)
    checkpoint: str = "best"
    sanity: bool = True
    eps_scale: float = 1.0           # attack radius as a multiple of the run's evaluation eps


@dataclass
class Suite:
    name: str
    file: Path
    device: str
    recipes: Dict[str, Path]
    seeds: List[int]
    evals: List[EvalSpec]
    cost: dict
    overrides: List[str] = field(default_factory=list)
    smoke: bool = False
    sweeps: dict = field(default_factory=dict)   # name -> {method, grid | variants, seeds, evals}
    diagnostics: dict = field(default_factory=dict)   # weight | softmax -> their record options


def _refuse_unknown(data: dict, allowed, where: str):
    for key in data:
        if key not in allowed:
            raise ConfigError(f"{where}.{key}: unknown key{suggest(key, allowed)}; allowed: {', '.join(allowed)}")


def check_seeds(value, where) -> List[int]:
    if not isinstance(value, list) or not value or len(set(value)) != len(value) or \
            any(isinstance(s, bool) or not isinstance(s, int) for s in value):
        raise ConfigError(f"{where}: must be a list of distinct integers, got {value!r}")
    return list(value)


def _evals(data, where) -> List[EvalSpec]:
    if not isinstance(data, dict) or not data:
        raise ConfigError(f"{where}: must map evaluation names to {{attacks, n, seeds, checkpoint, sanity, eps_scale}}")
    out = []
    for name, spec in data.items():
        if not isinstance(spec, dict) or "attacks" not in spec:
            raise ConfigError(f"{where}.{name}: must be a mapping with at least 'attacks'")
        _refuse_unknown(spec, EVAL_KEYS, f"{where}.{name}")
        e = EvalSpec(name=str(name), **spec)
        parse_attacks(e.attacks, field=f"{where}.{name}.attacks")
        if e.n is not None and not in_range(e.n, 1, MAX_POINTS, integer=True):
            raise ConfigError(f"{where}.{name}.n: must be null (the whole test split) or an integer in "
                              f"[1, {MAX_POINTS}], got {e.n!r}")
        if e.seeds not in ("all", "first"):
            raise ConfigError(f"{where}.{name}.seeds: must be 'all' or 'first', got {e.seeds!r}")
        if e.checkpoint not in ("best", "last"):
            raise ConfigError(f"{where}.{name}.checkpoint: must be 'best' or 'last', got {e.checkpoint!r}")
        if not in_range(e.eps_scale, 0, 100, lo_open=True):
            raise ConfigError(f"{where}.{name}.eps_scale: must be a number > 0 (a finite multiple of the run's "
                              f"evaluation eps, at most 100), got {e.eps_scale!r}")
        out.append(e)
    return out


def _diagnostics(data, where) -> dict:
    """{weight: {grid, n, attack, hessian_iters}, softmax: {n}}: the options of each record, checked."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: must map weight and/or softmax to their options")
    _refuse_unknown(data, DIAGNOSTIC_KEYS, where)
    for kind, options in data.items():
        if not isinstance(options, dict):
            raise ConfigError(f"{where}.{kind}: must map options ({', '.join(DIAGNOSTIC_KEYS[kind])}) to values")
        _refuse_unknown(options, DIAGNOSTIC_KEYS[kind], f"{where}.{kind}")
        for key, value in options.items():
            if key != "attack":
                check_number(f"{where}.{kind}.{key}", value, 0, LIMITS.get(key, MAX_ITERS), integer=True)
    return {kind: dict(options) for kind, options in data.items()}


def _cost(data, where) -> dict:
    """The cost table: {train | eval | diagnostics: {name: seconds}}, every number finite and >= 0."""
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise ConfigError(f"{where}: must map train, eval and diagnostics to {{name: seconds}}")
    for section, table in data.items():
        for key, value in table.items():
            check_number(f"{where}.{section}.{key}", value, 0, 10 ** 9)
    return dict(data)


def suite_path(name) -> Path:
    """A suite name (configs/study/<name>.yaml) or a path to a suite file."""
    path = Path(name)
    if path.suffix in (".yaml", ".yml") and path.exists():
        return path
    known = sorted(p.stem for p in SUITES_DIR.glob("*.yaml"))
    if str(name) not in known:
        raise ConfigError(f"suite: unknown suite {str(name)!r}{suggest(str(name), known)}; known: {', '.join(known)}")
    return SUITES_DIR / f"{name}.yaml"


def load_suite(name, *, smoke: bool = False) -> Suite:
    path = suite_path(name)
    data = load_yaml_text(path.read_text(), field="suite", path=path) or {}
    where = path.stem
    _refuse_unknown(data, SUITE_KEYS, where)
    for key in ("recipes", "seeds", "evals", "cost"):
        if key not in data:
            raise ConfigError(f"{where}.{key}: missing")
    if not isinstance(data["recipes"], dict) or not data["recipes"]:
        raise ConfigError(f"{where}.recipes: must map method names to recipe files")
    recipes = {str(m): (path.parent / r).resolve() for m, r in data["recipes"].items()}
    for method, recipe in recipes.items():
        if not recipe.exists():
            raise ConfigError(f"{where}.recipes.{method}: {recipe} does not exist")
    suite = Suite(name=str(data.get("suite", where)), file=path, device=str(data.get("device", "auto")),
                  recipes=recipes, seeds=check_seeds(data["seeds"], f"{where}.seeds"),
                  evals=_evals(data["evals"], f"{where}.evals"), cost=_cost(data["cost"], f"{where}.cost"),
                  sweeps=data.get("sweeps") or {},
                  diagnostics=_diagnostics(data.get("diagnostics") or {}, f"{where}.diagnostics"))
    if smoke:
        s = data.get("smoke")
        if not isinstance(s, dict):
            raise ConfigError(f"{where}.smoke: this suite has no smoke variant")
        _refuse_unknown(s, SMOKE_KEYS, f"{where}.smoke")
        suite.smoke = True
        suite.seeds = check_seeds(s.get("seeds", suite.seeds[:1]), f"{where}.smoke.seeds")
        suite.overrides = [str(o) for o in s.get("overrides", [])]
        if "evals" in s:
            suite.evals = _evals(s["evals"], f"{where}.smoke.evals")
        suite.cost = _cost(s.get("cost", suite.cost), f"{where}.smoke.cost")
        # the smoke variant's own sweeps only: the full sweeps name the full suite's evaluations
        suite.sweeps = s.get("sweeps") or {}
        if "diagnostics" in s:
            suite.diagnostics = _diagnostics(s["diagnostics"] or {}, f"{where}.smoke.diagnostics")
    if not isinstance(suite.sweeps, dict):
        raise ConfigError(f"{where}.sweeps: must map sweep names to {{method, grid | variants, seeds, evals}}")
    # names that become folders (runs/study-<suite>, runs/<method>-..., sweeps/<sweep>/) stay one plain name
    plain_name(suite.name, f"{where}.suite", "a suite name")
    for method in suite.recipes:
        plain_name(method, f"{where}.recipes.{method}", "a method name")
    for name, entry in suite.sweeps.items():
        plain_name(name, f"{where}.sweeps.{name}", "a sweep name")
        sweep_points(suite, name, entry, f"{where}.sweeps.{name}")
    return suite


def sweep_points(suite: Suite, name, entry, where) -> List[tuple]:
    """[(variant label, overrides)] of one sweep: every grid combination, or the named variants.
    A grid key without a dot is a method option (the weights being swept are)."""
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: must be a mapping with method and grid or variants")
    _refuse_unknown(entry, SWEEP_KEYS, where)
    if entry.get("method") not in suite.recipes:
        raise ConfigError(f"{where}.method: must be one of {', '.join(suite.recipes)}, got {entry.get('method')!r}")
    if ("grid" in entry) == ("variants" in entry):
        raise ConfigError(f"{where}: give exactly one of grid (key: [values]) or variants (name: [key=value, ...])")
    known = {e.name for e in suite.evals}
    if entry.get("evals") is not None and not isinstance(entry["evals"], list):
        raise ConfigError(f"{where}.evals: must be a list of this suite's evaluations ([] for none), "
                          f"got {entry['evals']!r}")
    for e in entry.get("evals") or []:
        if e not in known:
            raise ConfigError(f"{where}.evals: {e!r} is not an evaluation of this suite{suggest(e, known)}")
    for kind in entry.get("diagnostics") or []:
        if kind not in suite.diagnostics:
            raise ConfigError(f"{where}.diagnostics: {kind!r} is not a diagnostics record of this suite"
                              f"{suggest(str(kind), suite.diagnostics)}; it has {', '.join(suite.diagnostics) or 'none'}")
    if "variants" in entry:
        return [(str(v), [str(o) for o in overrides]) for v, overrides in dict(entry["variants"]).items()]
    grid = {(k if "." in k else f"method.options.{k}"): v for k, v in dict(entry["grid"]).items()}
    points = []
    for combo in itertools.product(*grid.values()):
        label = "_".join(k.split(".")[-1] + re.sub(r"[^A-Za-z0-9.+-]", "_", str(v)) for k, v in zip(grid, combo))
        points.append((label, [f"{k}={json.dumps(v)}" for k, v in zip(grid, combo)]))
    return points
