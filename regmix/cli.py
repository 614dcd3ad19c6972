"""The `regmix` command: train, demo."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .registry import ConfigError


def _train(args):
    from .config import load_config
    from .trainer import train
    overrides = list(args.set or [])
    if args.data_dir is not None:
        overrides.append(f"data.data_dir={args.data_dir}")
    if args.out_dir is not None:
        overrides.append(f"out_dir={args.out_dir}")
    if args.name is not None:
        overrides.append(f"name={args.name}")
    if args.no_progress:
        overrides.append("train.progress=false")
    config = load_config(args.config, overrides)
    run_dir = train(config, resume=args.resume)
    print(f"run directory: {run_dir}")


def _demo(args):
    from .demo import run_demo
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    run_demo(Path(args.out), methods=methods, epochs=args.epochs, progress=not args.no_progress,
             config_dir=args.config_dir)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="regmix", description="RegMix adversarial training, its baselines, attacks and evaluation.")
    parser.add_argument("--debug", action="store_true", help="show the full traceback on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    train = sub.add_parser("train", help="train one model from a YAML config",
                           description="Train one model. The resolved config, metrics.jsonl and the "
                                       "best/last checkpoints go to OUT_DIR/NAME (from the config).")
    train.add_argument("--config", required=True, help="YAML recipe, e.g. configs/demo/regmix.yaml")
    train.add_argument("--set", action="append", metavar="KEY=VALUE",
                       help="override a config key, e.g. --set method.options.alpha=0.5 (repeatable)")
    train.add_argument("--resume", action="store_true", help="continue the run in OUT_DIR/NAME from last.pt")
    train.add_argument("--data-dir", help="where CIFAR / Tiny ImageNet live (same as --set data.data_dir=...)")
    train.add_argument("--out-dir", help="parent folder of the run directory (config key out_dir)")
    train.add_argument("--name", help="run directory name (config key name)")
    train.add_argument("--no-progress", action="store_true", help="no progress bars")
    train.set_defaults(func=_train)

    demo = sub.add_parser("demo", help="train standard, pgd_at, pgk and regmix on the embedded digits and compare",
                          description="Offline demo: trains small_cnn on mnist5k with each method "
                                      "(configs/demo/), evaluates clean and PGD-20 accuracy on the test "
                                      "split and prints a table. Writes OUT/<method>/ and OUT/summary.{json,md}.")
    demo.add_argument("--out", default="runs/demo", help="output folder (default: runs/demo)")
    demo.add_argument("--methods", default="standard,pgd_at,pgk,regmix", help="comma-separated methods")
    demo.add_argument("--epochs", type=int, default=None, help="override the recipes' epoch count")
    demo.add_argument("--config-dir", default=None, help="folder of the demo recipes (default: configs/demo)")
    demo.add_argument("--no-progress", action="store_true", help="no progress bars")
    demo.set_defaults(func=_demo)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        args.func(args)
    except (ConfigError, ValueError, FileNotFoundError) as err:
        if args.debug:
            raise
        print(f"regmix: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("regmix: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # anything else is a bug or a fault: one line unless --debug
        if args.debug:
            raise
        from .trainer import TrainingDiverged
        kind = "error" if isinstance(err, TrainingDiverged) else f"unexpected {type(err).__name__}"
        print(f"regmix: {kind}: {err} (run with --debug for the traceback)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
