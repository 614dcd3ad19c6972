"""`regmix train`: the flags of regmix.trainer.train."""
from .. import distributed
from ..config import load_config
from ..registry import ConfigError
from ..trainer import train


def add_parser(sub):
    p = sub.add_parser("train", help="train one model from a YAML config",
                       description="Train one model. The resolved config, metrics.jsonl and the "
                                   "best/last checkpoints go to OUT_DIR/NAME (from the config).")
    p.add_argument("--config", required=True, help="YAML recipe, e.g. configs/demo/regmix.yaml")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a config key, e.g. --set method.options.alpha=0.5 (repeatable)")
    p.add_argument("--resume", action="store_true", help="continue the run in OUT_DIR/NAME from last.pt")
    p.add_argument("--overwrite", action="store_true",
                   help="OUT_DIR/NAME already holds a run: move it aside to NAME.old-<time> and start again")
    p.add_argument("--data-dir", help="where CIFAR / Tiny ImageNet live (same as --set data.data_dir=...)")
    # --out as in every other command; --out-dir, its older spelling, still works
    p.add_argument("--out", "--out-dir", dest="out_dir", help="parent folder of the run directory (config key out_dir)")
    p.add_argument("--name", help="run directory name (config key name)")
    p.add_argument("--device", help="auto, cpu, cuda or cuda:N (config key train.device)")
    p.add_argument("--seed", help="training seed (config key train.seed)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def run(args):
    if args.resume and args.overwrite:
        raise ConfigError("--overwrite: cannot be combined with --resume; --resume continues the run in "
                          "place, --overwrite moves it aside and starts again")
    overrides = list(args.set or [])
    for flag, key in (("data_dir", "data.data_dir"), ("out_dir", "out_dir"), ("name", "name"),
                      ("device", "train.device"), ("seed", "train.seed")):
        if getattr(args, flag) is not None:
            overrides.append(f"{key}={getattr(args, flag)}")
    if args.no_progress:
        overrides.append("train.progress=false")
    try:
        run_dir = train(load_config(args.config, overrides), resume=args.resume, overwrite=args.overwrite)
        if distributed.is_main():
            print(f"run directory: {run_dir}")
        # every rank reaches this point before any tears its process group down: a rank whose peer has
        # already closed gloo's sockets can abort in teardown ("terminate called without an active
        # exception", seen once in CI). Only on success: after an error the peers may never arrive.
        distributed.barrier()
    finally:
        distributed.cleanup()
