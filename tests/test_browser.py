"""The AMR explorer in a real browser: JupyterLab + headless Chromium (Playwright). Run all cells, drag
the alpha slider, and check that the simplex figure's data changed in the page.

REGMIX_SCREENSHOTS=DIR also saves the screenshot there (docs/screenshots/ holds the README's)."""
import json
import os
import shutil
from pathlib import Path

import pytest

from jupyter_browser import chromium_path, drag, jupyter_lab, browser_page, open_and_run_all

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = "02_amr_weight_explorer.ipynb"

pytestmark = [
    pytest.mark.skipif(chromium_path() is None, reason="no chromium (Debian: apt-get install -y chromium)"),
]


def simplex_path(page):
    """The P trajectory of the simplex figure (the first plotly graph), as the browser holds it."""
    return page.evaluate("() => JSON.stringify(document.querySelectorAll('.js-plotly-plot')[0].data[2].x)")


def test_amr_explorer_reacts_to_the_alpha_slider(tmp_path):
    pytest.importorskip("playwright")
    pytest.importorskip("jupyterlab")
    # a copy: JupyterLab's autosave must never write outputs into the committed notebook
    shutil.copy(ROOT / "notebooks" / NOTEBOOK, tmp_path / NOTEBOOK)
    env = {"REGMIX_PROFILE": "ci", "REGMIX_ROOT": str(ROOT), "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
           "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "settings"), "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "ws")}
    with jupyter_lab(tmp_path, env) as url, browser_page() as page:
        failure_shot = tmp_path / "failure.png"
        tracebacks = open_and_run_all(page, url, NOTEBOOK, screenshot=failure_shot)
        if tracebacks:
            page.screenshot(path=str(failure_shot), full_page=True)
        assert tracebacks == 0, f"a cell raised: see {failure_shot}"
        page.wait_for_selector(".widget-slider .noUi-handle")
        page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot').length >= 3")
        page.wait_for_selector("text=done:")  # the fine-tune cell finished
        readout = page.locator(".widget-slider .widget-readout").first
        before_value, before = readout.text_content(), simplex_path(page)
        alpha = page.locator(".widget-slider .noUi-handle").first
        alpha.scroll_into_view_if_needed()
        drag(page, alpha, -120)
        page.wait_for_function(
            "before => JSON.stringify(document.querySelectorAll('.js-plotly-plot')[0].data[2].x) !== before",
            arg=before, timeout=30_000)
        after_value, after = readout.text_content(), simplex_path(page)
        assert after_value != before_value
        assert json.loads(after) != json.loads(before)
        page.locator(".js-plotly-plot").first.scroll_into_view_if_needed()
        shot = tmp_path / "amr_explorer.png"
        page.locator(".jp-OutputArea-output .widget-vbox").first.screenshot(path=str(shot))
        assert shot.stat().st_size > 10_000
        if os.environ.get("REGMIX_SCREENSHOTS"):
            target = Path(os.environ["REGMIX_SCREENSHOTS"])
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy(shot, target / shot.name)
