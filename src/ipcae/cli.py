"""Shared behaviour of the command-line entry points: one-line errors for bad input."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from ipcae.errors import ConfigError, IpcaeError
from ipcae.store import record_failure, run_dir

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


def in_multirun() -> bool:
    try:
        return HydraConfig.get().mode == RunMode.MULTIRUN
    except ValueError:  # not running under Hydra
        return False


def check_no_missing_values(cfg: DictConfig) -> None:
    """Mandatory values (``???`` in a config) left unset are a user error, named before any work."""
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        raise ConfigError(f"{', '.join(missing)} must be set: add {missing[0]}=<value> to the command line")


def run_job(fn: Callable[[DictConfig], T]) -> Callable[[DictConfig], T | None]:
    """Wrap a Hydra task function for the command line.

    A user error is printed as ``error: <message>`` (no traceback) and exits with 2. Inside a
    multirun no error stops the sweep: the job writes ``failed.json`` (into the store, if one is
    configured, and into its output directory) and the sweep goes on; the sweep exits with 1 at
    the end (see :class:`ipcae.hydra_callbacks.SweepFailureSummary`).
    """

    @functools.wraps(fn)
    def wrapper(cfg: DictConfig) -> T | None:
        try:
            check_no_missing_values(cfg)
            return fn(cfg)
        except Exception as exc:
            user_error = find_user_error(exc)
            if in_multirun():
                message = str(user_error) if user_error else f"{type(exc).__name__}: {exc}"
                print(f"error: {message}", file=sys.stderr, flush=True)
                if user_error is None:
                    log.exception("job failed")
                record_failure(Path(cfg.paths.output_dir), cfg, exc)
                if cfg.get("store_dir"):
                    record_failure(run_dir(cfg.store_dir, cfg), cfg, exc)
                return None
            if user_error is None:
                raise
            print(f"error: {user_error}", file=sys.stderr, flush=True)
            raise SystemExit(2) from None

    return wrapper
