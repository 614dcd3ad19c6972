"""`python -m viz figures RUN... --out DIR`: draw every figure of the given runs from their records.

This is the drawing half of `regmix figures`, which computes the missing records first
(regmix.diagnostics.ensure_records) and then launches this entry point in a child process, so that the
regmix process never imports viz or a plotting library. Run alone, it draws from records that exist
and names the first one that does not.
"""
from __future__ import annotations

import argparse
import sys

from regmix.commands.flags import flag_names
from regmix.registry import ConfigError

from .check import Checker, FigureCheckError
from .export import FORMATS


CHECK_HELP = ("check every figure (viz.check: overlapping text, cropping, legends over data, tick values, "
              "fonts, preset sizes); exit 1 naming each problem")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m viz", description="Draw regmix records as figures.")
    parser.add_argument("--debug", action="store_true", help="show the full traceback on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p = sub.add_parser("figures", help="draw every figure of the given runs (PDF, SVG, PNG)",
                       description="Draw every figure of the given run directories (and alpha x beta heatmaps of "
                                   "sweep folders) from their diagnostic records into OUT.")
    p.add_argument("runs", nargs="+", metavar="RUN", help="run directories or sweep folders")
    p.add_argument("--out", default="figures", help="output folder (default: figures)")
    p.add_argument("--formats", default="pdf,svg,png", help="comma-separated subset of pdf,svg,png")
    p.add_argument("--check", action="store_true", help=CHECK_HELP)
    p = sub.add_parser("study", help="draw the figures of a study's results folder",
                       description="Draw the figures of DIR/results.json (written by `regmix study SUITE "
                                   "--results DIR`) into DIR/figures.")
    p.add_argument("dir", metavar="DIR", help="results folder holding results.json")
    p.add_argument("--formats", default="png,pdf", help="comma-separated subset of pdf,svg,png")
    p.add_argument("--check", action="store_true", help=CHECK_HELP)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    checker = Checker() if args.check else None
    try:
        formats = tuple(f.strip() for f in args.formats.split(",") if f.strip())
        if not formats or any(f not in FORMATS for f in formats):
            raise ConfigError(f"--formats: each must be one of {', '.join(FORMATS)}, got {args.formats!r}")
        if args.command == "study":
            from pathlib import Path

            from .study import render_study
            if not (Path(args.dir) / "results.json").exists():
                raise ConfigError(f"DIR: {args.dir} holds no results.json; write it with `regmix study SUITE --results DIR`")
            written = render_study(args.dir, formats=formats, check=checker)
            args.out = str(Path(args.dir) / "figures")
        else:
            from .figures import render_all
            with flag_names({"runs": "RUN"}):
                written = render_all(args.runs, args.out, formats=formats, check=checker)
    except ConfigError as err:
        if args.debug:
            raise
        print(f"viz: error: {err}", file=sys.stderr)
        return 2
    print(f"figures: {len(written)} files in {args.out}")
    if checker is not None:
        try:
            checker.raise_if_any()
        except FigureCheckError as err:
            print(f"viz: {err}", file=sys.stderr)
            return 1
        print(f"figure check: {len(checker.problems)} figures pass")
    return 0
