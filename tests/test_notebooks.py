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


@pytest.mark.parametrize("name", EXPECTED)
def test_notebook_starts_with_the_profile(name):
    """Each notebook reads REGMIX_PROFILE first, so that CI's quick settings reach every cell."""
    nb = json.loads((NOTEBOOKS / f"{name}.ipynb").read_text())
    first = next(c for c in nb["cells"] if c["cell_type"] == "code")
    assert "nb.profile()" in "".join(first["source"])
