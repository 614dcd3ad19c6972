"""The layering rules of docs/architecture.md, checked on the source: what may import what, how long a
module may grow, who spells a run directory's layout, and that every registered dataset is exercised."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PLOTTING = {"viz", "matplotlib", "plotly", "ipywidgets"}
# the command line: the only part of regmix that may import regmix.cli / regmix.commands
CLI = {"regmix/cli.py", "regmix/__main__.py"}
MAX_LINES = 400
# modules still over MAX_LINES while another change splits them: {path: why}; empty when none are
# a run directory's file names, spelled only by regmix/rundir.py
RUN_NAMES = ("config.yaml", "status.json", "metrics.jsonl", "best.pt", "last.pt", "diagnostics", "run.json")


def modules(package: str):
    return sorted(p for p in (ROOT / package).rglob("*.py") if "__pycache__" not in p.parts)


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(source: str, name: str, is_package: bool = False) -> set:
    """Every module a source file imports, at any depth (function-level imports too), as absolute
    dotted names; `from X import a` also counts X.a (it may be a module)."""
    package = name if is_package else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return found


def imports_of(path: Path) -> set:
    return imported_modules(path.read_text(), module_name(path), path.name == "__init__.py")


def test_the_import_reader_sees_function_level_relative_and_from_imports():
    source = ("import os\n"
              "def draw():\n"
              "    import matplotlib.pyplot as plt\n"
              "    from ..commands import figures\n"
              "class A:\n"
              "    def f(self):\n"
              "        from viz import figures\n")
    found = imported_modules(source, "regmix.diagnostics.compute")
    assert {"os", "matplotlib.pyplot", "regmix.commands", "regmix.commands.figures", "viz"} <= found
    assert "regmix.cli" in imported_modules("from . import cli\n", "regmix", is_package=True)


def test_regmix_never_imports_viz_or_a_plotting_library():
    bad = {rel(p): sorted(m for m in imports_of(p) if m.split(".")[0] in PLOTTING) for p in modules("regmix")}
    assert not {k: v for k, v in bad.items() if v}


def test_library_modules_never_import_the_command_line():
    def is_cli(m):
        return m == "regmix.cli" or m == "regmix.commands" or m.startswith(("regmix.cli.", "regmix.commands."))
    library = [p for p in modules("regmix") if rel(p) not in CLI and not rel(p).startswith("regmix/commands/")]
    bad = {rel(p): sorted(filter(is_cli, imports_of(p))) for p in library}
    assert not {k: v for k, v in bad.items() if v}


def test_no_module_is_over_400_lines():
    lengths = {rel(p): len(p.read_text().splitlines()) for pkg in ("regmix", "viz", "benchmarks") for p in modules(pkg)}
    assert "benchmarks/report.py" in lengths  # the rule reaches benchmarks/ too
    too_long = {k: n for k, n in lengths.items() if n > MAX_LINES}
    assert not too_long


def spelled_names(path: Path) -> list:
    """String constants (docstrings aside) that name a run directory's file as a path part."""
    tree = ast.parse(path.read_text())
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr)
                  and isinstance(node.body[0].value, ast.Constant)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            parts = node.value.split("/")
            found += [name for name in RUN_NAMES if name in parts]
    return found


@pytest.mark.parametrize("package", ["regmix/diagnostics", "viz"])
def test_run_directories_are_read_through_rundir(package):
    bad = {rel(p): spelled_names(p) for p in modules(package)}
    assert not {k: v for k, v in bad.items() if v}


def test_the_layout_reader_sees_a_spelled_path(tmp_path):
    f = tmp_path / "m.py"
    f.write_text('"""RUN/best.pt in a docstring is prose."""\nx = run / "best.pt"\ny = f"{run}/diagnostics/a"\n')
    assert sorted(spelled_names(f)) == ["best.pt", "diagnostics"]


@pytest.mark.parametrize("name", __import__("regmix").data.DATASETS.names())
def test_every_registered_dataset_builds_offline_or_names_its_folder(name, tmp_path):
    """A dataset is one file plus a registration; this picks up a new one: it either builds from what
    ships with the package (images in [0, 1], the advertised shape and classes) or, without its
    files, refuses with one line naming data.data_dir, never downloading."""
    import regmix
    from regmix.data import DatasetNotFound
    try:
        ds = regmix.create_dataset(name, "test", tmp_path)
    except DatasetNotFound as err:
        assert str(err).startswith("data.data_dir:") and "\n" not in str(err)
        assert not any(tmp_path.iterdir())
        return
    x, y = ds[0]
    assert x.shape == (ds.in_channels, *ds.image_size) and 0 <= x.min() and x.max() <= 1
    assert 0 <= int(y) < ds.num_classes and len(ds.mean) == len(ds.std) == ds.in_channels
