"""Progress bars: one tqdm.auto bar style for every long loop (a widget in JupyterLab, text in a
terminal, nothing when the output is neither), and a callback form for library loops that report
(done, total)."""
from __future__ import annotations

from typing import Callable, Optional


def progress_bar(total: int, desc: str, progress: Optional[bool] = None, unit: str = "pt"):
    """A tqdm.auto bar. progress=None: shown in a notebook or when the output is a terminal, quiet
    otherwise (tqdm's disable=None); True/False force it. Without tqdm installed (a bare GPU image), a
    bar that was not asked for (progress not True) is a silent counter."""
    try:
        from tqdm.auto import tqdm  # optional on a bare GPU image (see below)
    except ImportError:
        if progress:
            raise
        return QuietBar(total)
    disable = None if progress is None else not progress
    # every update drawn (mininterval=0): an update is a batch attacked, a grid point or a whole run
    return tqdm(total=total, desc=desc, unit=unit, leave=False, disable=disable, dynamic_ncols=True,
                mininterval=0, miniters=1)


class QuietBar:
    """The part of tqdm's bar that regmix's loops use, drawing nothing."""

    def __init__(self, total: int):
        self.total, self.n = total, 0

    def update(self, n: int = 1):
        self.n += n

    def set_postfix(self, *args, **kwargs):
        pass

    def set_postfix_str(self, text: str = "", refresh: bool = True):
        pass

    def set_description(self, text: str = "", refresh: bool = True):
        pass

    def close(self):
        pass


def progress_callback(desc: str, progress: Optional[bool] = None, unit: str = "pt") -> Callable[[int, int], None]:
    """update(done, total) for loops that report their own count (landscapes); the bar is made on the
    first call, when the total is known, and closed when done reaches it."""
    state = {}

    def update(done: int, total: int) -> None:
        if "bar" not in state:
            state["bar"] = progress_bar(total, desc, progress, unit)
        bar = state["bar"]
        bar.update(done - bar.n)
        if done >= total:
            bar.close()
    return update
