"""Between the library and the command line: library errors name arguments (`n`, `grid`), a command
names its flags (`--n`, `--grid`); flags whose values the library checks are read here as text, so that
a malformed value is one line naming the flag (argparse's own type errors print the whole usage)."""
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
