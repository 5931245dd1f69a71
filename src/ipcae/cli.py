"""Shared behaviour of the command-line entry points: one-line errors for bad input."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from typing import TypeVar

from ipcae.errors import IpcaeError

T = TypeVar("T")
log = logging.getLogger("ipcae")


def find_user_error(exc: BaseException | None) -> IpcaeError | None:
    """The IpcaeError behind ``exc``, also when Hydra or Lightning wrapped it in another exception."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, IpcaeError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def exit_on_user_error(fn: Callable[..., T]) -> Callable[..., T]:
    """Run ``fn``; a user error is printed as ``error: <message>`` and the process exits with 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs) -> T:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            user_error = find_user_error(exc)
            if user_error is None:
                raise
            print(f"error: {user_error}", file=sys.stderr, flush=True)
            raise SystemExit(2) from None

    return wrapper
