def add_parser(sub):
    p = sub.add_parser("figures", help="render every figure for the given runs (PDF, SVG, PNG)",
                       description="Render every diagnostic figure for the given run directories (and alpha x "
                                   "beta heatmaps for sweep folders) into OUT as PDF, SVG and PNG. Records that "
                                   "are missing are computed first and cached in RUN/diagnostics/.")
    p.add_argument("runs", nargs="+", metavar="RUN", help="run directories or sweep folders")
    p.add_argument("--out", default="figures", help="output folder (default: figures)")
    p.add_argument("--grid", type=int, default=11, help="landscape points per axis (default 11)")
    p.add_argument("--n", type=int, default=256, help="points of the fixed data subset (default 256)")
    p.add_argument("--attack", default="pgd10", help="attack of the adversarial landscapes (default pgd10)")
    p.add_argument("--examples", type=int, default=8, help="examples of the input-space landscape (default 8)")
    p.add_argument("--hessian-iters", type=int, default=20, help="power iterations (default 20; 0: skip)")
    p.add_argument("--recompute", action="store_true", help="recompute records even when cached")
    p.add_argument("--formats", default="pdf,svg,png", help="comma-separated subset of pdf,svg,png")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.set_defaults(func=run)


def run(args):
    from ..registry import ConfigError
    formats = tuple(f.strip() for f in args.formats.split(",") if f.strip())
    bad = [f for f in formats if f not in ("pdf", "svg", "png")]
    if bad or not formats:
        raise ConfigError(f"--formats: each must be one of pdf, svg, png, got {args.formats!r}")
    if args.grid < 3:
        raise ConfigError(f"--grid: must be an integer >= 3, got {args.grid}")
    try:
        from viz.figures import render_all  # rendering lives in viz; regmix itself never imports it
    except ImportError as err:
        raise ConfigError(f"figures: the viz package is not importable ({err}); install regmix with its "
                          f"figure dependencies (pip install -e .)") from None
    written = render_all(args.runs, args.out, grid=args.grid, n=args.n, attack=args.attack, examples=args.examples,
                         hessian_iters=args.hessian_iters, recompute=args.recompute, device=args.device,
                         formats=formats)
    print(f"figures: {len(written)} files in {args.out}")
