"""`regmix figures`: compute the records that are missing (here, in regmix), then draw them with viz's
own entry point (`python -m viz figures`) in a child process: regmix never imports viz or a plotting
library, and the drawing half can also be run alone on records that exist."""
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

from ..diagnostics.ensure import check_options, ensure_records
from ..registry import ConfigError
from ..runtime import resolve_device
from ..sources import ExternalModel, load_source, write_source_card
from .flags import add_source_arguments, flag_names, integer, source_options

FORMATS = ("pdf", "svg", "png")  # what viz exports; checked here so a typo fails before minutes of compute
# the library's argument names -> this command's flags
FLAGS = {"runs": "RUN", "grid": "--grid", "n": "--n", "examples": "--examples", "hessian_iters": "--hessian-iters",
         "attack": "--attack", "device": "--device", "source": "RUN", "dataset": "--dataset", "threat": "--threat",
         "model_dir": "--model-dir"}


def add_parser(sub):
    p = sub.add_parser("figures", help="render every figure for the given runs (PDF, SVG, PNG)",
                       description="Render every diagnostic figure for the given run directories (and alpha x "
                                   "beta heatmaps for sweep folders) into OUT as PDF, SVG and PNG. Records that "
                                   "are missing are computed first and cached in RUN/diagnostics/; the drawing "
                                   "is done by `python -m viz figures`.")
    p.add_argument("runs", nargs="+", metavar="RUN",
                   help="run directories, sweep folders, or models regmix did not train: a TorchScript file "
                        "or robustbench:<dataset>/<threat>/<name> (records go to runs/external/<name>)")
    p.add_argument("--out", default="figures", help="output folder (default: figures)")
    # integers are read as text and checked in run(): a malformed value is one line, not argparse's usage
    p.add_argument("--grid", default="11", help="landscape points per axis (default 11)")
    p.add_argument("--n", default="256", help="points of the fixed data subset (default 256)")
    p.add_argument("--attack", default="pgd10", help="attack of the adversarial landscapes (default pgd10)")
    p.add_argument("--examples", default="8", help="examples of the input-space landscape (default 8)")
    p.add_argument("--hessian-iters", default="20", help="power iterations (default 20; 0: skip)")
    p.add_argument("--recompute", action="store_true", help="recompute records even when cached")
    p.add_argument("--formats", default="pdf,svg,png", help="comma-separated subset of pdf,svg,png")
    p.add_argument("--check", action="store_true",
                   help="check every figure drawn (overlapping text, cropping, legends over data, tick values, "
                        "fonts, preset sizes) and fail naming each problem")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--data-dir", default=None, help="where the dataset lives (default: each run's data_dir)")
    add_source_arguments(p)
    p.set_defaults(func=run)


def run(args):
    formats = tuple(f.strip() for f in args.formats.split(",") if f.strip())
    if not formats or any(f not in FORMATS for f in formats):
        raise ConfigError(f"--formats: each must be one of {', '.join(FORMATS)}, got {args.formats!r}")
    viz_home()
    sizes = {name: integer(getattr(args, name), FLAGS[name]) for name in ("grid", "n", "examples", "hessian_iters")}
    with flag_names(FLAGS):
        check_options(attack=args.attack, device=args.device, **sizes)  # before any model is loaded
        items = [_item(run, args) for run in args.runs]
        ensure_records(items, attack=args.attack, recompute=args.recompute, device=args.device,
                       data_dir=args.data_dir, **sizes)
    # a model regmix did not train is drawn from its record folder, which its source.json describes
    for item in items:
        if isinstance(item, ExternalModel):
            write_source_card(item)
    paths = [str(item.home) if isinstance(item, ExternalModel) else item for item in items]
    draw(["figures", *paths, "--out", str(args.out), "--formats", ",".join(formats), *(["--check"] if args.check else [])])


def _item(run: str, args):
    """A run directory or sweep folder as given; any other source loaded (regmix.sources.load_source)."""
    if Path(run).is_dir():
        return run
    return load_source(run, device=resolve_device(args.device), **source_options(args))


def viz_home() -> str:
    """The folder holding the installed viz package; one line if it is missing (checked before any work)."""
    spec = importlib.util.find_spec("viz")  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("figures: the viz package is not installed; install regmix with its figure "
                          "dependencies (pip install -e .)")
    return str(Path(next(iter(spec.submodule_search_locations))).parent)


def draw(argv) -> None:
    """Run `python -m viz ARGV` in a child process: regmix itself never imports viz or a plotting library."""
    # the child imports the viz found here, not a `viz` folder that happens to be in the working directory
    home = viz_home()
    env = {**os.environ, "PYTHONSAFEPATH": "1",
           "PYTHONPATH": os.pathsep.join(p for p in (home, os.environ.get("PYTHONPATH")) if p)}
    drawing = subprocess.run([sys.executable, "-m", "viz", *argv], env=env)
    if drawing.returncode == 2:
        raise ConfigError("figures: drawing refused its input (the line above says why)")
    if drawing.returncode == 1 and "--check" in argv:
        raise RuntimeError("figures: the figure check failed (the lines above name each problem)")
    if drawing.returncode != 0:
        raise RuntimeError(f"drawing failed: python -m viz {argv[0]} exited with {drawing.returncode}")
