"""SIGTERM and SIGINT end a run as a failure that can be continued, never as a silent success.

Without this, Lightning turns SIGTERM (a SLURM time limit, ``timeout``, ``docker stop``) into
``SystemExit()`` (exit status 0) and swallows a KeyboardInterrupt, so a killed run or sweep looked
finished. Here the first signal raises :class:`RunInterrupted` wherever the run is; the command
line (``ipcae.cli.run_job``) records ``failed.json``, keeps the last checkpoint and exits with
128 + the signal number (143 for SIGTERM, 130 for SIGINT). A second signal ends the process at once.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class RunInterrupted(BaseException):
    """A signal asked the run to stop.

    A BaseException, like KeyboardInterrupt, so that no ``except Exception`` on the way (a cache
    that rebuilds a bad entry, a retry) mistakes it for an ordinary error and carries on.
    """

    def __init__(self, signum: int) -> None:
        self.signum = signum
        self.name = signal.Signals(signum).name
        super().__init__(f"interrupted by {self.name}")

    @property
    def exit_status(self) -> int:
        return 128 + self.signum


@contextmanager
def interruptible() -> Iterator[None]:
    """Within the block, SIGTERM and SIGINT raise RunInterrupted; the previous handlers after it."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return
    previous = {s: signal.getsignal(s) for s in SIGNALS}
    received: list[int] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        if received:  # the second one: the user insists
            os._exit(128 + signum)
        received.append(signum)
        raise RunInterrupted(signum)

    for s in SIGNALS:
        signal.signal(s, handler)
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h if h is not None else signal.SIG_DFL)
