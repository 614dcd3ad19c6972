"""The shipped recipes (YAML configs) live inside the package, so an installed regmix finds them from
any folder: `regmix train --config demo/regmix.yaml` and `configs/demo/regmix.yaml` (the checkout's
`configs` link) name the same file."""
from __future__ import annotations

from pathlib import Path

RECIPES = Path(__file__).resolve().parent / "configs"


def find_recipe(path) -> Path:
    """`path` as given when it exists; else the shipped recipe of that name (with or without a
    leading `configs/`). Returns the path as given when neither exists (the caller names it)."""
    path = Path(path)
    if path.exists() or path.is_absolute():
        return path
    parts = path.parts[1:] if path.parts[:1] == ("configs",) else path.parts
    shipped = RECIPES.joinpath(*parts) if parts else RECIPES
    return shipped if shipped.exists() else path


def recipe_dir(name: str) -> Path:
    """A folder of shipped recipes: demo, study, cifar10, ..."""
    return RECIPES / name
