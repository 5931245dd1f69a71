"""Shared behaviour of the command-line entry points: one-line errors for bad input."""

from __future__ import annotations

import errno
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
from ipcae.signals import RunInterrupted, interruptible
from ipcae.store import record_failure, run_dir
from ipcae.validation import validate

T = TypeVar("T")
log = logging.getLogger("ipcae")


class StorageError(IpcaeError):
    """A file could not be written: a full disk, a quota, a read-only or forbidden folder."""


# Errors of the environment, not of the code: reported as one line like bad input.
STORAGE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EROFS, errno.EPERM}


def find_user_error(exc: BaseException | None) -> IpcaeError | None:
    """The IpcaeError behind ``exc``, also when Hydra or Lightning wrapped it in another exception."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, IpcaeError):
            return exc
        if isinstance(exc, OSError) and exc.errno in STORAGE_ERRNOS:
            where = f"{exc.filename}: " if exc.filename else ""
            return StorageError(
                f"cannot write {where}{exc.strerror or exc}: free space, or point hydra.run.dir / store_dir / "
                "IPCAE_CACHE_DIR at a writable folder with room"
            )
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def find_interrupt(exc: BaseException | None) -> RunInterrupted | None:
    """The RunInterrupted behind ``exc``: its cause or the exception it was raised while handling."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, RunInterrupted):
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
            with interruptible():
                check_no_missing_values(cfg)
                validate(cfg, task_overrides())
                return fn(cfg)
        except RunInterrupted as exc:
            report_interrupt(cfg, exc)
            raise SystemExit(exc.exit_status) from None
        except Exception as exc:
            # A signal inside code that cleans up after itself (torch.save's zip writer) comes out as
            # that code's own error, with the interruption as its context.
            interrupted = find_interrupt(exc)
            if interrupted is not None:
                report_interrupt(cfg, interrupted)
                raise SystemExit(interrupted.exit_status) from None
            user_error = find_user_error(exc)
            if in_multirun():
                message = str(user_error) if user_error else f"{type(exc).__name__}: {exc}"
                print(f"error: {message}", file=sys.stderr, flush=True)
                if user_error is None:
                    log.exception("job failed")
                record_failures(cfg, exc)
                return None
            if user_error is None:
                raise
            print(f"error: {user_error}", file=sys.stderr, flush=True)
            raise SystemExit(2) from None

    return wrapper


def task_overrides() -> list[str]:
    try:
        return list(HydraConfig.get().overrides.task)
    except ValueError:  # not running under Hydra
        return []


def record_failures(cfg: DictConfig, exc: BaseException, **extra: object) -> None:
    """``failed.json`` in the output folder and the store entry; a full disk must not hide the error."""
    folders = [Path(cfg.paths.output_dir)]
    if cfg.get("store_dir"):
        folders.append(run_dir(cfg.store_dir, cfg))
    for folder in folders:
        try:
            record_failure(folder, cfg, exc, **extra)
        except OSError as write_error:
            print(f"warning: cannot write {folder / 'failed.json'}: {write_error}", file=sys.stderr)


def report_interrupt(cfg: DictConfig, exc: RunInterrupted) -> None:
    """failed.json, one line on how to continue, and in a sweep the summary of the sweep so far."""
    from ipcae.resume import last_checkpoint

    output_dir = Path(cfg.paths.output_dir)
    record_failures(cfg, exc, interrupted=exc.name)
    last = last_checkpoint(output_dir)
    if cfg.get("store_dir"):
        how = "re-run the same command: the store continues it from its last checkpoint"
    elif last.is_file():
        how = f"continue with the same command plus resume=true hydra.run.dir={output_dir}"
    else:
        how = "no epoch had finished, so there is no checkpoint to continue from"
    print(f"error: {exc} (run {output_dir}); {how}", file=sys.stderr, flush=True)
    if in_multirun():
        from ipcae.hydra_callbacks import report_sweep_failures

        sweep_dir = Path(HydraConfig.get().sweep.dir)
        report_sweep_failures(sweep_dir)
        print(
            f"the sweep was interrupted by {exc.name} in job {HydraConfig.get().job.num}; later jobs did not run: "
            "re-launch it (with store_dir= to skip the finished ones)",
            file=sys.stderr,
            flush=True,
        )
