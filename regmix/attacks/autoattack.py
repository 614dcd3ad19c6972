"""One adapter over fra31's AutoAttack, whichever way it is installed: `pyautoattack` (PyPI,
keyword-only arguments, returns (x_adv, y_adv), logs its checks to the 'auto-attack' logger) or
`autoattack` (git install, returns x_adv, prints its checks through its own Logger).

The attacks run one at a time on the points still robust, with the parameters of the standard (or
plus) version, and a state file (written atomically after each attack) lets an interrupted evaluation
resume without redoing finished attacks. AutoAttack's own check warnings (randomised or dynamic
defence, probabilities instead of logits, zero gradients, too few classes) are captured and returned,
so that they end up in the evaluation record.
"""
from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import json
import logging
import warnings as pywarnings
from contextlib import contextmanager
from pathlib import Path
from typing import List, Optional

import torch

from ..checks import read_json
from ..files import atomic_write_text
from ..modes import model_mode
from ..progress import progress_bar
from ..registry import ConfigError
from .base import attack_still_robust

STANDARD = ["apgd-ce", "apgd-t", "fab-t", "square"]
PLUS = ["apgd-ce", "apgd-dlr", "fab", "square", "apgd-t", "fab-t"]
NORMS = {"linf": "Linf", "l2": "L2"}


def backend():
    """(module, package name, version) of the AutoAttack that is installed."""
    for package in ("pyautoattack", "autoattack"):
        try:
            module = importlib.import_module(package)
        except ImportError:
            continue
        try:
            version = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            version = getattr(module, "__version__", "git")
        return module, package, version
    raise ConfigError("attacks: AutoAttack is not installed; `pip install pyautoattack` "
                      "(or fra31's auto-attack from git)")


class _Collect(logging.Handler):
    def __init__(self, sink: List[str]):
        super().__init__(logging.WARNING)
        self.sink = sink

    def emit(self, record):
        self.sink.append(record.getMessage())


class _GitLogger:
    """Stands in for the git package's Logger: keeps its 'Warning: ...' lines, drops its chatter."""

    def __init__(self, sink: List[str]):
        self.sink = sink

    def log(self, text=""):
        if str(text).lower().startswith("warning"):
            self.sink.append(str(text).split(":", 1)[-1].strip())


class AutoAttackRunner:
    """AutoAttack (Croce & Hein 2020) on a model, run attack by attack on the still-robust points.

    Arguments:
        model: a classifier on [0,1] inputs (normalisation inside the model), returning logits.
        threat (ThreatModel): norm (linf or l2) and eps.
        version (str): 'standard' (default), 'plus' or 'custom' (then `attacks` names them).
        attacks (list of str): from apgd-ce, apgd-dlr, fab, fab-t, apgd-t, square. Default: the version's.
        seed (int): AutoAttack's seed (default 0). device: where the model lives (default 'cpu').
        batch_size (int): points per forward pass (default 250).
        square_queries (int): Square's query budget (default: the version's, 5,000).

    Example:
        >>> runner = AutoAttackRunner(model, ThreatModel("linf", 8/255))
        >>> result = runner.run(x, y, robust=clean_flags(model, x, y))   # flags and accuracy after each
        >>> x_adv = runner(x, y)                                          # or as an attack
    """

    def __init__(self, model, threat, *, version="standard", attacks=None, seed=0, device="cpu",
                 batch_size=250, square_queries: Optional[int] = None):
        module, self.package, self.package_version = backend()
        self.model = model
        self.version = version
        self.attacks = list(attacks) if attacks else (PLUS if version == "plus" else STANDARD)
        self.batch_size = batch_size
        self.seed = seed
        self.warnings: List[str] = []
        # Built as the standard/plus version so every attack gets that version's parameters, then
        # pointed at one attack at a time.
        params = {"norm": NORMS[threat.norm], "eps": threat.eps, "seed": seed,
                  "version": "plus" if version == "plus" else "standard", "device": str(device)}
        if "verbose" in inspect.signature(module.AutoAttack).parameters:
            params["verbose"] = False
        self.aa = module.AutoAttack(model, **params)
        if square_queries is not None:
            self.aa.square.n_queries = int(square_queries)
        self.square_queries = self.aa.square.n_queries

    def describe(self) -> dict:
        return {"package": self.package, "package_version": self.package_version, "version": self.version,
                "attacks": self.attacks, "seed": self.seed, "square_queries": self.square_queries}

    @contextmanager
    def _capturing(self):
        """AutoAttack's check warnings, from either package, into self.warnings (once each)."""
        found: List[str] = []
        logger = logging.getLogger("auto-attack")
        handler, level, propagate = _Collect(found), logger.level, logger.propagate
        logger.addHandler(handler)
        logger.setLevel(logging.WARNING)
        logger.propagate = False  # kept in the record and shown by regmix, not printed twice
        git_logger = getattr(self.aa, "logger", None)
        if self.package == "autoattack":
            self.aa.logger = _GitLogger(found)
        try:
            with pywarnings.catch_warnings(record=True) as caught:
                pywarnings.simplefilter("always")
                yield
            found += [str(w.message) for w in caught]
        finally:
            logger.removeHandler(handler)
            logger.setLevel(level)
            logger.propagate = propagate
            if self.package == "autoattack":
                self.aa.logger = git_logger
            self.warnings += [w for w in dict.fromkeys(found) if w not in self.warnings]

    def _attack(self, name, x, y):
        self.aa.attacks_to_run = [name]
        with self._capturing(), model_mode(self.model, training=False):
            if self.package == "pyautoattack":
                x_adv, _ = self.aa.run_standard_evaluation(x, y, batch_size=self.batch_size)
            else:
                x_adv = self.aa.run_standard_evaluation(x, y, bs=self.batch_size)
        return x_adv

    @torch.no_grad()
    def _still_right(self, x_adv, y):
        device = next(self.model.parameters()).device
        with model_mode(self.model, training=False):
            out = [self.model(x_adv[i:i + self.batch_size].to(device)).argmax(1).cpu() == y[i:i + self.batch_size].cpu()
                   for i in range(0, len(y), self.batch_size)]
        return torch.cat(out)

    def run(self, x, y, robust: torch.Tensor, state_path: Optional[Path] = None, on_attack=None,
            progress=False) -> dict:
        """robust: the points to attack (e.g. the clean-correct ones). Returns the final robust flags,
        the robust accuracy after each attack and AutoAttack's check warnings. progress: a bar with one
        step per attack (see regmix.progress.progress_bar; off by default)."""
        state = {"attacks": self.attacks, "done": [], "after": {}, "robust": robust.tolist(), "n": len(y),
                 "warnings": []}
        if state_path is not None and Path(state_path).exists():
            saved = read_json(state_path, "AutoAttack state")  # a FIFO, torn or foreign file: one line
            if saved.get("attacks") != self.attacks or saved.get("n") != len(y) \
                    or not isinstance(saved.get("robust", []), list) or len(saved.get("robust", [])) != len(y):
                raise ConfigError(f"AutoAttack state {state_path} belongs to another evaluation "
                                  f"(attacks {saved.get('attacks')}, n {saved.get('n')}); delete it to start over")
            state = {**state, **saved}
            self.warnings += [w for w in state["warnings"] if w not in self.warnings]
        robust = torch.tensor(state["robust"], dtype=torch.bool)
        bar = None
        if progress is not False:
            bar = progress_bar(len(self.attacks), "AutoAttack", progress, unit="attack")
            bar.update(len(state["done"]))
        try:
            for name in self.attacks:
                if name in state["done"]:
                    continue
                if bar is not None:
                    bar.set_postfix_str(f"{name} on {int(robust.sum())} points left")
                self._attack_robust(name, x, y, robust)
                state["done"].append(name)
                state["after"][name] = robust.float().mean().item()
                state["robust"] = robust.tolist()
                state["warnings"] = list(self.warnings)
                if state_path is not None:
                    atomic_write_text(state_path, json.dumps(state))
                if bar is not None:
                    bar.update(1)
                if on_attack is not None:
                    on_attack(name, state["after"][name])
        finally:
            if bar is not None:
                bar.close()
        return {"robust": robust, "after": state["after"], "warnings": list(self.warnings)}

    def __call__(self, x, y) -> torch.Tensor:
        """As an attack: x_adv holds, for each point, the first adversarial example an attack found
        (x itself where none did, or where the point is misclassified already)."""
        x_adv = x.detach().clone()
        robust = self._still_right(x, y)
        for name in self.attacks:
            if not self._attack_robust(name, x, y, robust, x_adv):
                break
        return x_adv

    def _attack_robust(self, name, x, y, robust, x_adv=None) -> bool:
        """Attack `name` on the points still robust (`robust`, a bool mask on the CPU), compacted: a point
        it fools leaves `robust` and, when `x_adv` is given, takes the example (both updated in place).
        False, without running, when no point is left."""
        def run(idx):
            torch.manual_seed(self.seed)
            return self._attack(name, x[idx.to(x.device)], y[idx.to(y.device)])
        return attack_still_robust(robust, run, lambda found, idx: self._still_right(found, y[idx.to(y.device)]), x_adv)
