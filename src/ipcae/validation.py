"""Every value a user can type, checked before any work: one ``error:`` line naming it and the fix.

``ipcae.cli.run_job`` calls :func:`validate` before the task function, so that a bad value writes
nothing (no results, no store entry, no checkpoint) and shows no traceback. The constructors check
their own arguments too (for use from Python); this is the command line's early, complete pass.
"""

from __future__ import annotations

import inspect
import math
import tempfile
from collections.abc import Sequence
from numbers import Real
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from ipcae.errors import ConfigError

# torch.manual_seed and NumPy accept seeds below 2**32 (Lightning's seed_everything too).
MAX_SEED = 2**32 - 1
# Config sections that take new entries: each is read as a whole (a callback, a logger, a metric)
# or passed on as options that their reader checks (data.options, the LassoNet package's options).
OPEN_SECTIONS = ("callbacks", "logger", "model.metrics", "data.options", "model.options", "tags")


_ABSENT = object()


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def _select(cfg: DictConfig, key: str) -> tuple[bool, Any]:
    try:
        value = OmegaConf.select(cfg, key, default=_ABSENT, throw_on_missing=False)
    except Exception:  # an interpolation that cannot resolve here (outside Hydra): not ours to judge
        return False, None
    return (False, None) if value is _ABSENT else (True, value)


def positive_number(cfg: DictConfig, key: str, example: str, *, allow_zero: bool = False) -> None:
    present, value = _select(cfg, key)
    if not present:
        return
    ok = _is_real(value) and math.isfinite(value) and (value >= 0 if allow_zero else value > 0)
    if not ok:
        kind = "a finite number >= 0" if allow_zero else "a positive finite number"
        raise ConfigError(f"{key}={value!r} is not {kind}: pass e.g. {key}={example}")


def whole_number(cfg: DictConfig, key: str, minimum: int, example: str, *, optional: bool = False) -> None:
    present, value = _select(cfg, key)
    if not present or (optional and value is None):
        return
    if not _is_int(value) or value < minimum:
        default = " or null (the default)" if optional else ""
        raise ConfigError(f"{key}={value!r} must be a whole number >= {minimum}{default}: pass e.g. {key}={example}")


def check_run_length(cfg: DictConfig) -> None:
    """``max_epochs`` >= 1, or -1 (no epoch limit) when ``max_steps`` ends the run."""
    _, max_steps = _select(cfg, "trainer.max_steps")
    present, max_epochs = _select(cfg, "trainer.max_epochs")
    if max_steps not in (None, -1):
        whole_number(cfg, "trainer.max_steps", 1, "1000")
    if present and max_epochs == -1:
        if max_steps in (None, -1):
            raise ConfigError(
                "trainer.max_epochs=-1 without trainer.max_steps never ends and gives the temperature schedule "
                "no length: set trainer.max_epochs=N or +trainer.max_steps=N"
            )
        return
    whole_number(cfg, "trainer.max_epochs", 1, "200")


def check_seed(cfg: DictConfig) -> None:
    present, seed = _select(cfg, "seed")
    if present and (not _is_int(seed) or not 0 <= seed <= MAX_SEED):
        raise ConfigError(f"seed={seed!r} must be a whole number from 0 to {MAX_SEED}: pass e.g. seed=0")


def check_temperature(cfg: DictConfig) -> None:
    present, section = _select(cfg, "callbacks.temperature")
    if not present or not isinstance(section, DictConfig):
        return
    positive_number(cfg, "callbacks.temperature.start", "10.0")
    positive_number(cfg, "callbacks.temperature.end", "0.01")
    start, end = section.get("start", 10.0), section.get("end", 0.01)
    if start < end:
        raise ConfigError(
            f"callbacks.temperature.start={start} is below callbacks.temperature.end={end}: the schedule "
            "anneals downwards (a start below the end would be ignored); swap them or set start >= end"
        )


def check_writable(folder: str | Path, key: str) -> None:
    """``folder`` exists or can be created, and a file can be written in it (probed, then removed)."""
    path = Path(folder).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".ipcae-probe-"):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(f"{key}={folder} is not a writable folder ({reason}): choose another {key}") from None


def _constructor_options(target: str) -> tuple[set[str], bool] | None:
    """Named parameters of ``target``'s constructor chain and whether it takes any other keyword."""
    from hydra.utils import get_class

    try:
        cls = get_class(target)
    except Exception:
        return None
    names: set[str] = set()
    for klass in cls.__mro__:
        if "__init__" not in klass.__dict__:
            continue
        if klass.__module__.startswith(("torch.nn", "builtins", "lightning")) and klass is not cls:
            return names, False  # the framework bases take no options of the user's
        params = inspect.signature(klass.__init__).parameters.values()
        names |= {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        if not any(p.kind == p.VAR_KEYWORD for p in params):
            return names, False
    return names, True


def check_added_keys(cfg: DictConfig, overrides: Sequence[str]) -> None:
    """``+key=value`` may only add what something reads: refuse new plain keys nothing would use.

    Allowed: group appends (``+model/metrics=f1_macro``), Hydra's own (``hydra.*``), new entries of
    the open sections (a new callback or metric), and options a section's class accepts.
    """
    for override in overrides:
        if not override.startswith("+"):
            continue
        key = override.lstrip("+").split("=", 1)[0]
        if "/" in key or "@" in key or key.startswith("hydra"):
            continue
        parent = key.rpartition(".")[0]
        if parent == "":
            raise ConfigError(
                f"+{key} adds a key that nothing reads: check the spelling, or set an existing key without '+'"
            )
        if any(parent == s or parent.startswith(s + ".") for s in OPEN_SECTIONS):
            continue
        present, node = _select(cfg, parent)
        target = node.get("_target_") if present and isinstance(node, DictConfig) else None
        options = _constructor_options(target) if isinstance(target, str) else None
        name = key.rpartition(".")[2]
        if options is not None and (options[1] or name in options[0]):
            continue
        known = f" (its options: {', '.join(sorted(options[0] - {'self'}))})" if options else ""
        raise ConfigError(f"+{key}: {parent} has no option {name!r}{known}: check the spelling")


def check_checkpoint(cfg: DictConfig) -> None:
    from ipcae.checkpoints import load_checkpoint

    present, path = _select(cfg, "ckpt_path")
    if present and path:
        load_checkpoint(path)


def validate(cfg: DictConfig, overrides: Sequence[str] = ()) -> None:
    """All checks of a train or eval config; the first problem raises a ConfigError."""
    check_added_keys(cfg, overrides)
    check_seed(cfg)
    positive_number(cfg, "model.lr", "0.001")
    positive_number(cfg, "model.weight_decay", "0.0", allow_zero=True)
    whole_number(cfg, "data.batch_size", 1, "128", optional=True)
    whole_number(cfg, "data.k", 1, "10", optional=True)
    whole_number(cfg, "data.steps_per_batch", 1, "32")
    whole_number(cfg, "data.eval_batch_size", 1, "4096")
    check_run_length(cfg)
    whole_number(cfg, "threads", 1, "1", optional=True)
    present, resume = _select(cfg, "resume")
    if present and not isinstance(resume, bool):
        raise ConfigError(f"resume={resume!r} must be true or false")
    check_temperature(cfg)
    check_checkpoint(cfg)
    present, store = _select(cfg, "store_dir")
    if present and store:
        check_writable(store, "store_dir")
    present, output = _select(cfg, "paths.output_dir")
    if present and output:
        check_writable(output, "hydra.run.dir")
