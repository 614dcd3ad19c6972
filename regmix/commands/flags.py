"""Between the library and the command line: library errors name arguments (`n`, `grid`), a command
names its flags (`--n`, `--grid`); flags whose values the library checks are read here as text, so that
a malformed value is one line naming the flag (argparse's own type errors print the whole usage). And the
flags every command that takes any model source shares (regmix.sources.load_source's options)."""
from __future__ import annotations

from contextlib import contextmanager

from ..registry import ConfigError


@contextmanager
def flag_names(mapping: dict):
    """Inside the block, a ConfigError "ARG: ..." for an ARG in mapping becomes "FLAG: ..."."""
    try:
        yield
    except ConfigError as err:
        name, sep, rest = str(err).partition(":")
        if sep and name in mapping:
            raise type(err)(f"{mapping[name]}:{rest}") from None
        raise


def integer(value, flag: str) -> int:
    """The integer a flag was given, or one line naming the flag (its range is the library's to check)."""
    try:
        return int(str(value).strip())
    except ValueError:
        raise ConfigError(f"{flag}: must be an integer, got {value!r}") from None


def add_source_arguments(parser):
    """The flags a command needs to take a model that is not a regmix run."""
    parser.add_argument("--dataset", default=None,
                        help="dataset of a TorchScript model without stored metadata (e.g. cifar10)")
    parser.add_argument("--threat", default=None,
                        help="its threat model, NORM:EPS such as linf:8/255 (runs and RobustBench know theirs)")
    parser.add_argument("--model-dir", default="./models",
                        help="RobustBench model directory: <dir>/<dataset>/<threat>/<name>.pt (default ./models)")


def source_options(args) -> dict:
    """load_source keyword arguments from a parser that add_source_arguments filled."""
    return {"dataset": getattr(args, "dataset", None), "threat": getattr(args, "threat", None),
            "model_dir": getattr(args, "model_dir", "./models")}
