"""One adapter over fra31's AutoAttack, whichever way it is installed: `pyautoattack` (PyPI,
keyword-only arguments, returns (x_adv, y_adv)) or `autoattack` (git install, returns x_adv).

The attacks run one at a time on the points still robust, with the parameters of the standard (or
plus) version, and a state file (written atomically after each attack) lets an interrupted evaluation
resume without redoing finished attacks.
"""
from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import json
import logging
from pathlib import Path
from typing import Optional

import torch

from ..checkpoint import atomic_write_text
from ..registry import ConfigError

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
    raise ConfigError("--attacks: AutoAttack is not installed; `pip install pyautoattack` "
                      "(or fra31's auto-attack from git)")


class AutoAttackRunner:
    def __init__(self, model, threat, *, version="standard", attacks=None, seed=0, device="cpu",
                 batch_size=250, square_queries: Optional[int] = None):
        module, self.package, self.package_version = backend()
        self.model = model
        self.version = version
        self.attacks = list(attacks) if attacks else (PLUS if version == "plus" else STANDARD)
        self.batch_size = batch_size
        self.seed = seed
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
        logging.getLogger("auto-attack").setLevel(logging.WARNING)

    def describe(self) -> dict:
        return {"package": self.package, "package_version": self.package_version, "version": self.version,
                "attacks": self.attacks, "seed": self.seed, "square_queries": self.square_queries}

    def _attack(self, name, x, y):
        self.aa.attacks_to_run = [name]
        if self.package == "pyautoattack":
            x_adv, _ = self.aa.run_standard_evaluation(x, y, batch_size=self.batch_size)
        else:
            x_adv = self.aa.run_standard_evaluation(x, y, bs=self.batch_size)
        return x_adv

    @torch.no_grad()
    def _still_right(self, x_adv, y):
        device = next(self.model.parameters()).device
        out = [self.model(x_adv[i:i + self.batch_size].to(device)).argmax(1).cpu() == y[i:i + self.batch_size]
               for i in range(0, len(y), self.batch_size)]
        return torch.cat(out)

    def run(self, x, y, robust: torch.Tensor, state_path: Optional[Path] = None, on_attack=None) -> dict:
        """robust: the points to attack (e.g. the clean-correct ones). Returns the final robust flags
        and the robust accuracy after each attack."""
        state = {"attacks": self.attacks, "done": [], "after": {}, "robust": robust.tolist(), "n": len(y)}
        if state_path is not None and Path(state_path).exists():
            saved = json.loads(Path(state_path).read_text())
            if saved.get("attacks") != self.attacks or saved.get("n") != len(y):
                raise ConfigError(f"AutoAttack state {state_path} belongs to another evaluation "
                                  f"(attacks {saved.get('attacks')}, n {saved.get('n')}); delete it to start over")
            state = saved
        robust = torch.tensor(state["robust"], dtype=torch.bool)
        for name in self.attacks:
            if name in state["done"]:
                continue
            idx = robust.nonzero().squeeze(1)
            if idx.numel():
                torch.manual_seed(self.seed)
                x_adv = self._attack(name, x[idx], y[idx]).cpu()
                robust[idx[~self._still_right(x_adv, y[idx])]] = False
            state["done"].append(name)
            state["after"][name] = robust.float().mean().item()
            state["robust"] = robust.tolist()
            if state_path is not None:
                atomic_write_text(state_path, json.dumps(state))
            if on_attack is not None:
                on_attack(name, state["after"][name])
        return {"robust": robust, "after": state["after"]}
