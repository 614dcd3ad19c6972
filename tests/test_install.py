"""A built wheel, installed outside the checkout, runs the demo's smallest path from any folder."""
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def run(cmd, **kw):
    result = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=900, **kw)
    assert result.returncode == 0, f"{cmd}\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(bin folder, clean environment) of a fresh venv holding the wheel; torch and the other
    dependencies come from this interpreter's site-packages by a path line (the wheel is installed with
    --no-deps: nothing is downloaded), which does not carry the editable install of the checkout."""
    root = tmp_path_factory.mktemp("wheel")
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
         "-w", root / "dist", REPO])
    wheel = next((root / "dist").glob("regmix-*.whl"))
    run([sys.executable, "-m", "venv", root / "venv"])
    bin_dir = root / "venv" / "bin"
    site = run([bin_dir / "python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip()
    (Path(site) / "regmix_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    run([bin_dir / "python", "-m", "pip", "install", "-q", "--no-deps", "--no-index", wheel])
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return wheel, bin_dir, env


def test_the_wheel_carries_the_recipes(installed):
    wheel, _, _ = installed
    names = zipfile.ZipFile(wheel).namelist()
    for recipe in ("regmix/configs/demo/regmix.yaml", "regmix/configs/demo/base.yaml",
                   "regmix/configs/cifar10/resnet18_regmix.yaml", "regmix/configs/study/mnist5k.yaml",
                   "regmix/configs/study/mnist5k/regmix.yaml"):
        assert recipe in names


def test_installed_regmix_runs_the_demo_and_a_shipped_recipe_from_any_folder(installed, tmp_path):
    _, bin_dir, env = installed
    where = run([bin_dir / "python", "-c", "import regmix; print(regmix.__file__)"], cwd=tmp_path, env=env)
    assert str(bin_dir.parent) in where.stdout and str(REPO) not in where.stdout  # the wheel, not the checkout
    run([bin_dir / "regmix", "demo", "--methods", "standard", "--epochs", "1", "--out", "demo", "--no-progress"],
        cwd=tmp_path, env=env)
    assert (tmp_path / "demo" / "summary.md").is_file() and (tmp_path / "demo" / "standard" / "best.pt").is_file()
    run([bin_dir / "regmix", "train", "--config", "demo/standard.yaml", "--set", "train.epochs=1",
         "--set", "train.progress=false", "--name", "shipped", "--out-dir", "runs"], cwd=tmp_path, env=env)
    assert (tmp_path / "runs" / "shipped" / "best.pt").is_file()
