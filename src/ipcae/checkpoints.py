"""Checkpoints that are safe to open, written atomically, and complete enough to resume exactly.

Opening a checkpoint runs no code from it: files are read with ``torch.load(weights_only=True)``
(stated explicitly, so ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` cannot turn it off), and the model is
rebuilt from the saved hyper-parameters only through :func:`build`, which instantiates a
``_target_`` only if it is a class of the kind its place asks for (a selector, a decoder, an
optimiser, a scheduler, a metric). A user's own selector or decoder stays loadable as long as its
module is importable and the class is such a subclass; functions (``builtins.exec``,
``torch.load``, ``os.system``) and anything from the standard library are refused.

Lightning reads and writes checkpoints through :class:`SafeCheckpointIO` (atomic writes, safe
reads, also for ``trainer.fit(ckpt_path=...)``), and :class:`RandomState` stores every random
generator's state in each checkpoint, so that a resumed run draws the same numbers as one that
was never interrupted.
"""

from __future__ import annotations

import importlib
import pickle
import random
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import Checkpoint
from torch import nn

from ipcae.atomic import atomic_file
from ipcae.errors import IpcaeError

LAST_CHECKPOINT = "last.ckpt"


class CheckpointError(IpcaeError):
    """A checkpoint file is missing, not a checkpoint, or asks to build something not allowed."""


# --- reading ---------------------------------------------------------------------------------------


def load_checkpoint(path: str | Path, what: str = "ckpt_path") -> dict[str, Any]:
    """The checkpoint at ``path`` as plain tensors and values; refuses anything else with one line."""
    path = Path(path)
    if not path.is_file():
        kind = "a directory" if path.is_dir() else "missing"
        raise CheckpointError(f"{what}={path} is {kind}, not a checkpoint file: pass <run dir>/checkpoints/<name>.ckpt")
    try:
        # weights_only=True explicitly: the environment variable only overrides an unset argument.
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "weights only" in str(exc).lower() or "weights_only" in str(exc):
            raise CheckpointError(
                f"{what}={path} holds Python objects besides tensors and plain values; it is not loaded, "
                "since loading them could run code: use a checkpoint written by ipcae"
            ) from None
        raise CheckpointError(f"{what}={path} is not a PyTorch checkpoint ({_first_line(exc)})") from None
    except Exception as exc:  # the unpickler fails on junk in arbitrary ways (KeyError, RuntimeError, ...)
        raise CheckpointError(
            f"{what}={path} is not a readable PyTorch checkpoint (truncated or another kind of file: "
            f"{_first_line(exc)})"
        ) from None
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise CheckpointError(f"{what}={path} is not a Lightning checkpoint (no state_dict)")
    return checkpoint


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


class SafeCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint IO with atomic writes and reads that never unpickle code.

    Lightning's own writer can leave a truncated file under the final name when the disk fills;
    here the file appears complete or not at all, and no temporary file is left behind.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        with atomic_file(path, binary=True) as f:
            torch.save(checkpoint, f)

    def load_checkpoint(self, path: Any, map_location: Any = None, weights_only: bool | None = None) -> dict[str, Any]:
        # Whatever the caller asks for: weights only.
        return load_checkpoint(path)


# --- building from saved hyper-parameters ------------------------------------------------------


def _scheduler_bases() -> tuple[type, ...]:
    from torch.optim import lr_scheduler

    return tuple(c for c in (getattr(lr_scheduler, "LRScheduler", None), lr_scheduler.ReduceLROnPlateau) if c)


def _metric_base() -> type:
    import torchmetrics

    return torchmetrics.Metric


def _selector_base() -> type:
    from ipcae.selectors import FeatureSelector

    return FeatureSelector


# What each place of the module's config may build (a class that subclasses one of these).
ROLES: dict[str, Callable[[], tuple[type, ...]]] = {
    "selector": lambda: (_selector_base(),),
    "decoder": lambda: (nn.Module,),
    "optimizer": lambda: (torch.optim.Optimizer,),
    "scheduler": _scheduler_bases,
    "metric": lambda: (_metric_base(),),
}
# Nested ``_target_`` entries (e.g. a decoder's sub-module) may be any of the above.
NESTED = ("decoder", "optimizer", "scheduler", "metric", "selector")

# Modules never imported for a checkpoint: the standard library holds no selector, decoder,
# optimiser or metric, and some of its modules act on import (``antigravity``, ``this``).
_REFUSED_TOP = set(sys.stdlib_module_names) | {"builtins", "__main__"}


def locate_class(target: object, role: str, where: str) -> type:
    """The class named by ``target`` if it is allowed as a ``role``; else a CheckpointError."""
    bases = tuple(b for name in ((role,) if role in ROLES else NESTED) for b in ROLES[name]())
    wanted = " or ".join(sorted({f"{b.__module__}.{b.__qualname__}" for b in bases}))
    if not isinstance(target, str) or not target or target.startswith(".") or ".." in target:
        raise CheckpointError(f"{where}._target_={target!r} is not a class path: name a subclass of {wanted}")
    parts = target.split(".")
    if parts[0] in _REFUSED_TOP:
        raise CheckpointError(
            f"{where}._target_={target!r} is refused: only a subclass of {wanted} can be built from a config"
        )
    obj: Any = None
    for cut in range(len(parts) - 1, 0, -1):
        module_name = ".".join(parts[:cut])
        try:
            obj = importlib.import_module(module_name)
        except ImportError:
            continue
        try:
            for attr in parts[cut:]:
                obj = getattr(obj, attr)
        except AttributeError:
            obj = None
        break
    if obj is None:
        raise CheckpointError(
            f"{where}._target_={target!r} cannot be imported: put its module on PYTHONPATH or install its package"
        )
    if not isinstance(obj, type) or not issubclass(obj, bases):
        kind = "a class" if isinstance(obj, type) else f"a {type(obj).__name__}"
        raise CheckpointError(
            f"{where}._target_={target!r} is {kind} that is not a subclass of {wanted}: refused "
            "(only such classes are built from configs and checkpoints)"
        )
    return obj


def check_config(config: Any, role: str, where: str) -> None:
    """Every ``_target_`` in ``config`` must be an allowed class; no interpolation may hide another."""
    if isinstance(config, dict):
        if "_target_" in config:
            locate_class(config["_target_"], role, where)
        for key, value in config.items():
            if key != "_target_":
                check_config(value, "nested", f"{where}.{key}")
    elif isinstance(config, list | tuple):
        for i, value in enumerate(config):
            check_config(value, "nested", f"{where}[{i}]")
    elif isinstance(config, str) and "${" in config:
        # Hydra resolves interpolations before instantiating, and a resolver (oc.decode) can turn a
        # string into a config with a _target_ of its own: saved configs are resolved, so refuse.
        raise CheckpointError(f"{where}={config!r} holds an interpolation: configs here must be resolved values")


def build(config: Any, role: str, where: str, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate(config, **kwargs)`` after :func:`check_config` allowed every target."""
    from hydra.utils import instantiate
    from omegaconf import DictConfig, OmegaConf

    plain = OmegaConf.to_container(config, resolve=True) if isinstance(config, DictConfig) else config
    if not isinstance(plain, dict) or "_target_" not in plain:
        raise CheckpointError(f"{where} must be a config with a _target_ (got {type(plain).__name__})")
    check_config(plain, role, where)
    return instantiate(plain, **kwargs)


# --- random state ------------------------------------------------------------------------------


def random_state() -> dict[str, Any]:
    """Every generator a run draws from, as tensors and plain values (loadable with weights_only)."""
    keys, pos, has_gauss, gauss = np.random.get_state()[1:]
    version, internal, gauss_next = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "gauss": float(gauss),
        },
        "python": {"version": version, "internal": list(internal), "gauss_next": gauss_next},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_random_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["internal"]), p["gauss_next"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class RandomState(L.Callback):
    """Saves the random generators' states in every checkpoint and restores them on resume.

    Lightning restores weights, optimiser, schedulers, loops and callbacks, but not the generators:
    without this a resumed run would draw other Gumbel noise than the uninterrupted one. The state
    is taken when the checkpoint is written (after the epoch's training and validation) and set
    when training resumes, before the next epoch draws anything. The Gumbel sampler's NumPy seeds
    come from torch's generator, so they follow.
    """

    KEY = "ipcae_random_state"

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        checkpoint[self.KEY] = random_state()

    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        # Only when training resumes: Lightning also restores callbacks for validate / test at the
        # best checkpoint, which must leave the generators as the run left them.
        if trainer.state.fn == "fit" and self.KEY in checkpoint:
            set_random_state(checkpoint[self.KEY])


class LastCheckpoint(Checkpoint):
    """Writes ``<dirpath>/last.ckpt`` after every training epoch: what ``resume=true`` continues from.

    Lightning's ``ModelCheckpoint(save_last=True)`` only refreshes ``last.ckpt`` in epochs where it
    also saved a top-k checkpoint, so with ``save_top_k=1`` it holds the best epoch, not the last.
    A ``Checkpoint`` subclass, so Lightning runs it after ModelCheckpoint has recorded this epoch's
    best: the saved callback state is the one the next epoch starts from.
    """

    def __init__(self, dirpath: str, filename: str = LAST_CHECKPOINT) -> None:
        self.dirpath, self.filename = dirpath, filename

    @property
    def path(self) -> str:
        return str(Path(self.dirpath) / self.filename)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking and not trainer.fast_dev_run:
            trainer.save_checkpoint(self.path, weights_only=False)  # the full state: resuming needs it
