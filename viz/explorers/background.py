"""Long explorer computations in a background thread, so that the notebook stays responsive: the
kernel keeps answering widget events (a slider, a Cancel button) while the thread works.

One mechanism for every explorer (the AMR explorer's fine-tune, the landscape explorer's surfaces):
a subclass writes work(), reports with progress(...) and calls check() where stopping is safe."""
from __future__ import annotations

import threading


class Cancelled(Exception):
    """Raised by check() inside work() once stop() was called: it unwinds the computation before its
    result is written anywhere."""


class BackgroundJob:
    """work() runs in a daemon thread once start() is called.

    on_progress(*args) is called by progress(...) and on_done(job) once at the end, also after an error
    or a cancel (`error` then holds the exception, `cancelled` says which); `result` holds what work()
    returned. A thread's exception is otherwise lost, hence on_done.
    """

    name = "regmix-job"

    def __init__(self, *, on_progress=None, on_done=None):
        self.on_progress, self.on_done = on_progress, on_done
        self.result, self.error, self.cancelled = None, None, False
        self._finished = threading.Event()  # set before on_done, so that on_done sees the job as over
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name=self.name, daemon=True)

    def work(self):
        raise NotImplementedError

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        """Ask the job to stop at its next check(); it returns at once (join() to wait)."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def check(self):
        if self._stop.is_set():
            raise Cancelled()

    def progress(self, *args):
        if self.on_progress:
            self.on_progress(*args)

    def join(self, timeout=None):
        self.thread.join(timeout)
        return self

    @property
    def running(self) -> bool:
        return self.thread.is_alive() and not self._finished.is_set()

    def _run(self):
        try:
            self.result = self.work()
        except Cancelled:
            self.cancelled = True
        except Exception as err:  # noqa: BLE001 - reported through on_done
            self.error = err
        finally:
            self._finished.set()
            if self.on_done:
                self.on_done(self)
