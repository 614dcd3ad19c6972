"""The committed notebooks: all five present, outputs stripped, kernelspec python3 (nbmake and a fresh
JupyterLab both resolve it to the running interpreter). Executing them is nbmake's job
(`pytest --nbmake notebooks/`, run by `make test` with REGMIX_PROFILE=ci)."""
import json
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
EXPECTED = ["01_quickstart", "02_amr_weight_explorer", "03_softmax_vs_ground_truth", "04_loss_landscape",
            "05_paper_figures", "06_external_model"]


def test_every_notebook_is_there():
    assert sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb")) == EXPECTED


@pytest.mark.parametrize("name", EXPECTED)
def test_notebook_is_committed_stripped(name):
    nb = json.loads((NOTEBOOKS / f"{name}.ipynb").read_text())
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code, "a notebook without code"
    with_outputs = [i for i, c in enumerate(code) if c.get("outputs") or c.get("execution_count") is not None]
    assert not with_outputs, (f"{name}.ipynb has outputs in code cells {with_outputs}: clear them "
                              f"(jupyter nbconvert --clear-output --inplace notebooks/{name}.ipynb)")


def tags(cell) -> list:
    return cell.get("metadata", {}).get("tags", [])


@pytest.mark.parametrize("name", EXPECTED)
def test_notebook_starts_with_the_profile(name):
    """Each notebook reads REGMIX_PROFILE first, so that CI's quick settings reach every cell; its
    papermill parameters cell may come before it (parameters that need no profile) or right after it
    (defaults that depend on the profile)."""
    nb = json.loads((NOTEBOOKS / f"{name}.ipynb").read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    first_two = code[:2]
    profile_at = [i for i, c in enumerate(first_two) if "nb.profile()" in "".join(c["source"])]
    assert profile_at, f"{name}.ipynb: nb.profile() must be in the first code cell (or the second after parameters)"
    assert profile_at[0] == 0 or "parameters" in tags(code[0]), (
        f"{name}.ipynb: only the parameters cell may come before the nb.profile() cell")


@pytest.mark.parametrize("name", EXPECTED)
def test_notebook_has_one_papermill_parameters_cell(name):
    """papermill injects its values after the one code cell tagged `parameters`."""
    nb = json.loads((NOTEBOOKS / f"{name}.ipynb").read_text())
    tagged = [c for c in nb["cells"] if "parameters" in tags(c)]
    assert len(tagged) == 1, f"{name}.ipynb: {len(tagged)} cells tagged parameters, expected exactly 1"
    assert tagged[0]["cell_type"] == "code"
    # only assignments and comments: papermill's injected cell overrides these names
    body = [line for line in "".join(tagged[0]["source"]).splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert body and all("=" in line or line.startswith(" ") for line in body), f"{name}.ipynb: {body}"


def test_notebooks_do_not_switch_training_progress_off():
    """tqdm.auto shows training progress in a notebook; the notebooks' helper must leave it on."""
    from viz.notebook import PROFILES, _overrides
    for prof in PROFILES.values():
        assert not any(o.startswith("train.progress") for o in _overrides(prof, Path("runs"), "x"))
    for path in NOTEBOOKS.glob("*.ipynb"):
        assert "progress=false" not in path.read_text().lower().replace(" ", ""), path.name
