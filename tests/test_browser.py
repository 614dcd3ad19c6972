"""The explorers in a real browser: JupyterLab + headless Chromium (Playwright). The AMR explorer on a
cold first run (no run and no sweep yet: Run All trains both, as a new user's first run does): every
figure drawn, no "widget model not found" in the console, then drag the alpha slider and check that the
simplex figure's data changed in the page. The distribution and landscape explorers: Run All, drawn.

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


# the simplex figure's P trace, found by its handle (viz.explorers.widgets.handles), not by position
P_TRACE = "document.querySelectorAll('.js-plotly-plot')[0].data.find(t => t.meta === 'P')"


def simplex_path(page):
    """The P trajectory of the simplex figure (the first plotly graph), as the browser holds it."""
    return page.evaluate(f"() => JSON.stringify({P_TRACE}.x)")


# every plotly graph in the page has traces, and each scatter trace with points drew a path
DRAWN = """() => [...document.querySelectorAll('.js-plotly-plot')].map(g => ({
    traces: (g.data || []).length,
    points: (g.data || []).reduce((n, t) => n + ((t.x && t.x.length) || (t.z && t.z.length) || 0), 0),
    paths: g.querySelectorAll('.scatterlayer .trace path.js-line, .barlayer .point path').length}))"""


def environment(tmp_path, **extra):
    return {"REGMIX_PROFILE": "ci", "REGMIX_ROOT": str(ROOT), "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
            "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "settings"), "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "ws"),
            **extra}


def keep_screenshot(shot: Path):
    if os.environ.get("REGMIX_SCREENSHOTS"):
        target = Path(os.environ["REGMIX_SCREENSHOTS"])
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, target / shot.name)


def test_amr_explorer_draws_on_a_cold_first_run_and_reacts_to_the_alpha_slider(tmp_path):
    pytest.importorskip("playwright")
    pytest.importorskip("jupyterlab")
    # a copy: JupyterLab's autosave must never write outputs into the committed notebook
    shutil.copy(ROOT / "notebooks" / NOTEBOOK, tmp_path / NOTEBOOK)
    # an empty runs folder: the run and the sweep are trained inside this Run All (the cold first run
    # on which the simplex and KL-weighting figures came up blank)
    env = environment(tmp_path, REGMIX_RUNS=str(tmp_path / "runs"))
    console = []
    # tall enough for the whole explorer in one screenshot
    with jupyter_lab(tmp_path, env) as url, browser_page(height=2100) as page:
        page.on("console", lambda message: console.append(message.text))
        failure_shot = tmp_path / "failure.png"
        tracebacks = open_and_run_all(page, url, NOTEBOOK, screenshot=failure_shot)
        if tracebacks:
            page.screenshot(path=str(failure_shot), full_page=True)
        assert tracebacks == 0, f"a cell raised: see {failure_shot}"
        assert (tmp_path / "runs" / "notebooks-ci" / "sweep-regmix").is_dir()   # it was cold: trained here
        page.wait_for_selector(".widget-slider .noUi-handle")
        page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot').length >= 4")
        page.wait_for_selector("text=done:")  # the fine-tune cell finished
        graphs = page.evaluate(DRAWN)
        assert len(graphs) == 4 and all(g["traces"] and g["points"] and g["paths"] for g in graphs), graphs
        assert not [m for m in console if "model not found" in m.lower()], console
        readout = page.locator(".widget-slider .widget-readout").first
        before_value, before = readout.text_content(), simplex_path(page)
        alpha = page.locator(".widget-slider .noUi-handle").first
        alpha.scroll_into_view_if_needed()
        drag(page, alpha, -120)
        page.wait_for_function(
            f"before => JSON.stringify({P_TRACE}.x) !== before",
            arg=before, timeout=30_000)
        after_value, after = readout.text_content(), simplex_path(page)
        assert after_value != before_value
        assert json.loads(after) != json.loads(before)
        page.locator(".js-plotly-plot").first.scroll_into_view_if_needed()
        shot = tmp_path / "amr_explorer.png"
        page.locator(".jp-OutputArea-output .widget-vbox").first.screenshot(path=str(shot))
        assert shot.stat().st_size > 10_000
        keep_screenshot(shot)


@pytest.mark.parametrize("notebook,name", [("03_softmax_vs_ground_truth.ipynb", "distribution_explorer"),
                                           ("04_loss_landscape.ipynb", "landscape_explorer")])
def test_the_other_explorers_draw_in_the_browser(tmp_path, notebook, name):
    pytest.importorskip("playwright")
    pytest.importorskip("jupyterlab")
    shutil.copy(ROOT / "notebooks" / notebook, tmp_path / notebook)
    with jupyter_lab(tmp_path, environment(tmp_path)) as url, browser_page() as page:
        failure_shot = tmp_path / "failure.png"
        assert open_and_run_all(page, url, notebook, screenshot=failure_shot) == 0, f"a cell raised: see {failure_shot}"
        page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot').length >= 1")
        graphs = page.evaluate(DRAWN)
        assert graphs and all(g["traces"] and g["points"] for g in graphs), graphs
        explorer = page.locator(".jp-OutputArea-output .widget-vbox").first
        explorer.scroll_into_view_if_needed()
        shot = tmp_path / f"{name}.png"
        explorer.screenshot(path=str(shot))
        assert shot.stat().st_size > 10_000
        keep_screenshot(shot)
