"""The layer order of docs/architecture.md, checked on the import graph: every import of one regmix
module by another (at the top of a file or inside a function) goes to the same layer or one below,
and no set of modules imports itself round in a circle. Function-level imports carry their reason."""
import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# docs/architecture.md's layers, from the ground up; a module belongs to the first entry naming it or a
# package above it. A new module that no entry names fails test_every_module_has_a_layer.
LAYERS = {
    1: ("registry", "checks", "yaml_text", "files", "faults", "threat", "losses", "modes", "runtime",
        "progress", "recipes", "lock", "distributed", "ema", "loggers"),
    2: ("rundir", "checkpoint"),
    3: ("data", "models", "attacks", "methods"),
    4: ("config_ranges", "config", "sources"),
    5: ("training", "trainer"),
    6: ("evaluation",),
    7: ("diagnostics",),
    8: ("sweep", "demo", "study", "paper"),
    9: ("cli", "__main__", "commands", ""),   # "": the package's __init__, the public API
}
NAMES = ("ground", "storage", "components", "configuration", "training", "evaluation", "diagnostics",
         "orchestration", "front")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules(root: Path = ROOT) -> dict:
    return {module_name(p): p for p in sorted((root / "regmix").rglob("*.py")) if "__pycache__" not in p.parts}


def imports(path: Path, known: dict):
    """(imported regmix module, line) for each import of a project module, at any depth.
    `from P import a` is an import of P.a when P.a is a module, else of P."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names if a.name in known]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            targets = [f"{target}.{a.name}" if f"{target}.{a.name}" in known else target for a in node.names]
            targets = [t for t in targets if t in known]
        else:
            continue
        for target in set(targets) - {name}:
            yield target, node.lineno


def layer_of(name: str):
    rest = name.split(".", 1)[1] if "." in name else ""
    for layer, entries in LAYERS.items():
        for entry in entries:
            if rest == entry or (entry and rest.startswith(entry + ".")):
                return layer
    return None


def graph(known: dict) -> dict:
    return {name: {t for t, _ in imports(path, known)} for name, path in known.items()}


def upward_imports(known: dict) -> list:
    return [f"{known[a].relative_to(ROOT)}:{line} imports {b} ({NAMES[layer_of(b) - 1]}, above "
            f"{NAMES[layer_of(a) - 1]})"
            for a, path in known.items() for b, line in imports(path, known)
            if layer_of(a) and layer_of(b) and layer_of(b) > layer_of(a)]


def circles(edges: dict) -> list:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]
    for root in edges:
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter[0]; counter[0] += 1; stack.append(root); on.add(root)
        while work:
            v, children = work[-1]
            for w in children:
                if w not in index:
                    index[w] = low[w] = counter[0]; counter[0] += 1; stack.append(w); on.add(w)
                    work.append((w, iter(sorted(edges.get(w, ())))))
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    component = []
                    while True:
                        w = stack.pop(); on.discard(w); component.append(w)
                        if w == v:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def unexplained_lazy_imports(known: dict) -> list:
    """Function-level imports (of anything: a project module, an optional extra, the standard library)
    without a comment on their line saying why they are not at the top of the file."""
    out = []
    for path in known.values():
        lines = path.read_text().splitlines()
        tree = ast.parse("\n".join(lines))
        nested = {(n.lineno, n.col_offset) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
                  for n in ast.walk(f) if isinstance(n, (ast.Import, ast.ImportFrom))}
        out += [f"{path.relative_to(ROOT)}:{line}: {lines[line - 1].strip()}" for line, _ in sorted(nested)
                if "#" not in lines[line - 1]]
    return out


KNOWN = project_modules()


def test_every_module_has_a_layer():
    assert [name for name in KNOWN if layer_of(name) is None] == []


def test_no_import_goes_up_a_layer():
    found = upward_imports(KNOWN)
    assert not found, "\n".join(found)


def test_no_modules_import_each_other_in_a_circle():
    found = circles(graph(KNOWN))
    assert not found, "\n".join(" <-> ".join(c) for c in found)


def test_function_level_imports_say_why():
    """Imports sit at the top of a file; one inside a function (an optional extra, the CLI's start-up, a
    heavy module only some commands need) says why in a comment on its line."""
    found = unexplained_lazy_imports(KNOWN)
    assert not found, "\n".join(found)


@pytest.fixture
def copy_of_regmix(tmp_path):
    """A copy of the package's sources, to add an import to."""
    for path in KNOWN.values():
        target = tmp_path / path.relative_to(ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(path.read_text())
    return tmp_path


def test_the_check_fails_on_an_upward_import(copy_of_regmix, monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "ROOT", copy_of_regmix)
    path = copy_of_regmix / "regmix/rundir.py"
    path.write_text(path.read_text() + "\n\ndef later():\n    from .trainer import train  # a reason\n")
    found = upward_imports(project_modules(copy_of_regmix))
    assert len(found) == 1 and "regmix/rundir.py" in found[0] and "regmix.trainer (training, above storage)" in found[0]


def test_the_check_fails_on_a_circle_and_an_unexplained_lazy_import(copy_of_regmix, monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "ROOT", copy_of_regmix)
    path = copy_of_regmix / "regmix/files.py"
    path.write_text(path.read_text() + "\n\ndef later():\n    from .losses import kl\n")
    path = copy_of_regmix / "regmix/losses.py"
    path.write_text(path.read_text() + "\nfrom .files import first_line\n")
    known = project_modules(copy_of_regmix)
    assert ["regmix.files", "regmix.losses"] in circles(graph(known))
    assert [f for f in unexplained_lazy_imports(known) if "files.py" in f] != []
