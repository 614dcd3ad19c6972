"""`regmix landscape`: the flags of regmix.diagnostics.compute's landscape records."""
from ..attacks.specs import parse_attack
from ..diagnostics import compute
from ..diagnostics.records import load_record
from ..progress import progress_callback
from ..registry import ConfigError
from ..runtime import resolve_device
from ..sources import load_source
from ..threat import parse_number
from .flags import add_source_arguments, flag_names, integer, source_options


def add_parser(sub):
    p = sub.add_parser("landscape", help="compute a loss landscape of a run (an .npz record)",
                       description="Compute a loss landscape on a fixed subset (the first N points of a split) "
                                   "and write RUN/diagnostics/landscape_{weight,input}.npz or interp_<OTHER>.npz. "
                                   "weight: 2D, two filter-normalised Gaussian directions, clean and under the "
                                   "attack, with sharpness and the Hessian's top eigenvalue; input: per example, "
                                   "over (FGSM direction, random sign direction); interp: from RUN to --other.")
    p.add_argument("run", metavar="RUN_DIR_OR_MODEL",
                   help="a run directory, a checkpoint or TorchScript file, or robustbench:<dataset>/<threat>/<name>")
    p.add_argument("--kind", default="weight", help="weight (default), input or interp")
    # integers are read as text and checked in run(): a malformed value is one line, not argparse's usage
    p.add_argument("--grid", default="21", help="points per axis (default 21; interp: points on the line)")
    p.add_argument("--span", type=float, default=None,
                   help="coordinates in [-span, span] (default 1 for weight, 2 (units of eps) for input)")
    p.add_argument("--n", default="512", help="points of the fixed subset (default 512)")
    p.add_argument("--examples", default="8", help="input: number of examples (default 8)")
    p.add_argument("--attack", default="pgd10", help="none, fgsm, pgdK or cwK (default pgd10)")
    p.add_argument("--eps", type=str, default=None, help="attack radius (default: the run's eval eps)")
    p.add_argument("--other", help="interp: the second run directory")
    p.add_argument("--split", default="test", help="train, val or test (default test)")
    p.add_argument("--checkpoint", default="best", help="best or last (default best)")
    p.add_argument("--include-bias-bn", action="store_true", help="weight: also move biases and BatchNorm")
    p.add_argument("--hessian-iters", default="20", help="weight: power iterations (0: skip)")
    p.add_argument("--seed", default="0", help="directions and attack starts (default 0)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--out", help="record path (default under RUN/diagnostics/)")
    p.add_argument("--data-dir", default=None, help="where the dataset lives (default: the run's data_dir)")
    add_source_arguments(p)
    p.set_defaults(func=run)


# the library's argument names -> this command's flags
FLAGS = {"span": "--span", "grid": "--grid", "steps": "--grid", "n": "--n", "examples": "--examples", "hessian_iters": "--hessian-iters",
         "attack": "--attack", "other": "--other", "eps": "--eps", "device": "--device", "train.device": "--device",
         "source": "RUN_DIR_OR_MODEL", "dataset": "--dataset", "threat": "--threat", "model_dir": "--model-dir"}


def run(args):
    if args.kind not in compute.KINDS:
        raise ConfigError(f"--kind: must be one of {', '.join(compute.KINDS)}, got {args.kind!r}")
    if args.checkpoint not in ("best", "last"):
        raise ConfigError(f"--checkpoint: must be best or last, got {args.checkpoint!r}")
    grid, n, examples = integer(args.grid, "--grid"), integer(args.n, "--n"), integer(args.examples, "--examples")
    hessian_iters, seed = integer(args.hessian_iters, "--hessian-iters"), integer(args.seed, "--seed")
    eps = None if args.eps is None else parse_number(args.eps, "--eps")
    common = dict(seed=seed, split=args.split, which=args.checkpoint, eps=eps, device=args.device, out=args.out,
                  data_dir=args.data_dir)
    with flag_names(FLAGS):
        # every argument checked before the model is loaded (a bad value costs no load)
        parse_attack(args.attack, "attack")
        compute.check_int("steps" if args.kind == "interp" else "grid", grid, 2)
        compute.check_int("examples" if args.kind == "input" else "n", examples if args.kind == "input" else n, 1)
        if args.span is not None:
            compute.check_span(args.span)
        if args.kind == "weight":
            compute.check_int("hessian_iters", hessian_iters, 0)
        if args.kind == "interp" and args.other is None:
            raise ConfigError("other: interpolation needs a second run directory")
        # any model source: a run, a checkpoint or TorchScript file, robustbench:<dataset>/<threat>/<name>
        args.run = load_source(args.run, which=args.checkpoint, device=resolve_device(args.device),
                               **source_options(args))
        if args.kind == "weight":
            path = compute.weight_landscape_record(
                args.run, grid=grid, span=args.span or 1.0, n=n, attack=args.attack,
                include_bias_bn=args.include_bias_bn, hessian_iters=hessian_iters,
                progress=progress_callback("landscape"), **common)
        elif args.kind == "input":
            path = compute.input_landscape_record(args.run, grid=grid, span=args.span or 2.0, examples=examples,
                                                  **common)
        else:
            path = compute.interp_record(args.run, args.other, steps=grid, n=n, attack=args.attack,
                                         progress=progress_callback("interp"), **common)
    _, meta = load_record(path)
    summary = {k: meta[k] for k in ("sharpness_mean", "wall_s") if k in meta}
    if "sharpness" in meta and isinstance(meta["sharpness"], dict):
        summary["max_rise"] = {k: round(v["max_rise"], 4) for k, v in meta["sharpness"].items()}
    if "hessian" in meta:
        summary["hessian_top"] = {k: round(v["eigenvalue"], 4) for k, v in meta["hessian"].items()}
    print(f"{path}  {summary}")
