"""`regmix sweep`: the flags of regmix.sweep.sweep."""
from ..sweep import SweepFailed, parse_grid, parse_seeds, sweep


def add_parser(sub):
    p = sub.add_parser("sweep", help="train every combination of a grid of config values and seeds",
                       description="Train one run per (grid combination, seed) into OUT_DIR/<values>_seed<S>/. "
                                   "Complete runs are skipped, interrupted ones resumed; OUT_DIR/sweep.json lists "
                                   "the plan. A bare key (alpha) is a method option (method.options.alpha).")
    p.add_argument("config", help="YAML recipe, e.g. configs/demo/regmix.yaml")
    p.add_argument("--grid", action="append", required=True, metavar="KEY=V1,V2",
                   help="values of one config key, e.g. --grid alpha=0.5,1,2 --grid optim.lr=0.1,0.01 (repeatable)")
    p.add_argument("--seeds", default="0", help="training seeds, e.g. 0,1,2 (default 0)")
    p.add_argument("--jobs", type=int, default=1, help="runs trained at once, in separate processes (default 1)")
    p.add_argument("--out", "--out-dir", dest="out_dir",
                   help="sweep folder (default: <config out_dir>/sweep-<config name>)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config key for every run")
    p.set_defaults(func=run)


def run(args):
    rows = sweep(args.config, parse_grid(args.grid), parse_seeds(args.seeds), out_dir=args.out_dir,
                 jobs=args.jobs, extra_overrides=args.set or ())
    counts = {}
    for row in rows:
        counts[row["outcome"]] = counts.get(row["outcome"], 0) + 1
    print("sweep: " + ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) +
          (f"; folder {rows[0]['run_dir'].rsplit('/', 1)[0]}" if rows else ""))
    failed = [r for r in rows if r["outcome"] == "failed"]
    if failed:
        raise SweepFailed(f"{len(failed)} of {len(rows)} runs failed: " +
                          "; ".join(f"{r['name']}: {r['error']}" for r in failed[:3]))
