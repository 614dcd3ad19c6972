"""`regmix eval`: the flags of regmix.evaluation.run.evaluate_run."""
import sys

from ..evaluation.report import build_table, format_table
from ..evaluation.run import evaluate_run
from ..runtime import resolve_device
from .flags import add_source_arguments, flag_names, source_options

# evaluate_run's argument names -> this command's flags, for its error messages
FLAGS = {"attacks": "--attacks", "n": "--n", "eps": "--eps", "step": "--step", "restarts": "--restarts",
         "batch_size": "--batch-size", "which": "--checkpoint", "split": "--split", "seed": "--seed",
         "sanity_n": "--sanity-n", "device": "--device", "source": "RUN_DIR_OR_MODEL",
         "dataset": "--dataset", "threat": "--threat", "model_dir": "--model-dir",
         "train.device": "--device"}  # runtime.resolve_device speaks of the config field


def add_parser(sub):
    p = sub.add_parser("eval", help="evaluate a run or checkpoint under attack; write a JSON record",
                       description="Evaluate on the test split (first N points, or all) with the given attacks "
                                   "(each runs only on the points still robust), run the sanity checks, print "
                                   "a table and write RUN_DIR/eval/<name>.json (+ per-example flags .npz). "
                                   "The threat model is the run's evaluation threat (eval.eps, else the "
                                   "training eps).")
    p.add_argument("path", metavar="RUN_DIR_OR_MODEL",
                   help="a run directory, a checkpoint or TorchScript file, or robustbench:<dataset>/<threat>/<name>")
    p.add_argument("--attacks", default="clean,pgd20,cw20,aa",
                   help="comma-separated: clean, fgsm, fgsm_rs, pgd, cw (the run's eval steps), pgdN, cwN, apgdN, "
                        "apgd_dlrN, apgd_tN (regmix's Auto-PGD, its targeted form), aa, "
                        "aa-plus, aa:apgd-ce+square, square (default: clean,pgd20,cw20,aa)")
    p.add_argument("--n", type=int, default=None, help="evaluate the first N points (default: all)")
    p.add_argument("--eps", default=None,
                   help="attack radius, e.g. 8/255 (default: the run's eval.eps, else its training eps)")
    p.add_argument("--step", default=None, help="PGD/CW step of pgdN/cwN (default: eps/4)")
    p.add_argument("--restarts", type=int, default=1, help="PGD/CW random restarts (default 1)")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--checkpoint", choices=["best", "last"], default="best",
                   help="which checkpoint of a run directory (default: best)")
    p.add_argument("--no-ema", action="store_true", help="evaluate the raw weights even where EMA weights exist")
    p.add_argument("--split", choices=["test", "val"], default="test")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--data-dir", default=None, help="where the dataset lives (default: the run's data_dir)")
    p.add_argument("--no-sanity", action="store_true", help="skip the extra sanity-check attacks")
    add_source_arguments(p)
    p.set_defaults(func=run)


def run(args):
    # progress bars only when someone watches: stdout a terminal (tqdm checks stderr itself)
    progress = None if sys.stdout.isatty() else False
    with flag_names(FLAGS):
        device = resolve_device(args.device)
        record = evaluate_run(args.path, attacks=args.attacks, n=args.n, eps=args.eps, step=args.step,
                              batch_size=args.batch_size, which=args.checkpoint, ema=not args.no_ema,
                              split=args.split, seed=args.seed, restarts=args.restarts,
                              device=device, data_dir=args.data_dir,
                              sanity=not args.no_sanity, progress=progress, **source_options(args))
    print()
    print(format_table(build_table([record]), "md"))
    print(f"\n{len(record['warnings'])} sanity warning(s); record: {record['_path']}")
