"""The `regmix` command. Sub-commands live in regmix/commands/, one module each."""
from __future__ import annotations

import argparse
import importlib
import sys

from .commands import COMMANDS
from .registry import ConfigError
from .training.errors import TrainingDiverged, TrainingStopped


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="regmix", description="RegMix adversarial training, its baselines, attacks and evaluation.")
    parser.add_argument("--debug", action="store_true", help="show the full traceback on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f".commands.{name}", __package__).add_parser(sub)
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
    except Exception as err:
        if not isinstance(err, TrainingStopped):
            return _fault(err, args.debug)
        print(f"regmix: {err}", file=sys.stderr)
        return 128 + int(err.signum)
    return 0


def _fault(err, debug) -> int:
    """Anything else is a fault: one line unless --debug."""
    if debug:
        raise err
    kind = "error" if isinstance(err, TrainingDiverged) else f"unexpected {type(err).__name__}"
    print(f"regmix: {kind}: {err} (run with --debug for the traceback)", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
