"""`regmix demo`: the flags of regmix.demo.run_demo."""
from pathlib import Path

from ..demo import run_demo


def add_parser(sub):
    p = sub.add_parser("demo", help="train standard, pgd_at, pgk and regmix on the embedded digits and compare",
                       description="Offline demo: trains small_cnn on mnist5k with each method "
                                   "(configs/demo/), evaluates clean and PGD-20 accuracy on the test "
                                   "split and prints a table. Writes OUT/<method>/ and OUT/summary.{json,md}.")
    p.add_argument("--out", default="runs/demo", help="output folder (default: runs/demo)")
    p.add_argument("--methods", default="standard,pgd_at,pgk,regmix", help="comma-separated methods")
    p.add_argument("--epochs", type=int, default=None, help="override the recipes' epoch count")
    p.add_argument("--config-dir", default=None, help="folder of the demo recipes (default: configs/demo)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def run(args):
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    run_demo(Path(args.out), methods=methods, epochs=args.epochs, progress=not args.no_progress,
             config_dir=args.config_dir)
