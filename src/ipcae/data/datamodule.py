"""A LightningDataModule that keeps whole splits as tensors on the training device."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lightning as L
import torch

from ipcae.data.registry import dataset_info, import_dataset_module, load_splits
from ipcae.data.rows import MappedRows
from ipcae.data.splits import Splits
from ipcae.errors import ConfigError

Batch = tuple[torch.Tensor, torch.Tensor]
log = logging.getLogger("ipcae")


class IndexBatches:
    """Batches ``(x[idx], y[idx])`` of tensors that already live on the device.

    Replaces a DataLoader: no worker processes, no collation, no host-to-device copies per step.
    Under DDP each rank iterates over its own shard (``rank::world_size`` of one permutation that
    every rank draws identically); training shards are cut to equal length so that ranks take the
    same number of optimiser steps.
    """

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        batch_size: int,
        *,
        shuffle: bool = False,
        drop_last: bool = False,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        equal_shards: bool = False,
        group: int = 1,
    ) -> None:
        self.x, self.y = x, y
        self.batch_size = batch_size
        self.shuffle, self.drop_last = shuffle, drop_last
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.equal_shards = equal_shards
        self.group = max(int(group), 1)
        self.epoch = 0
        if not isinstance(x, torch.Tensor):
            # Sparse or memory-mapped rows: a batch is a fresh tensor, not a view that stacks.
            self.group = 1
        n = len(x)
        self.shard_size = n // world_size if equal_shards else len(range(rank, n, world_size))

    def _batch_bounds(self) -> list[tuple[int, int]]:
        full, rest = divmod(self.shard_size, self.batch_size)
        bounds = [(i * self.batch_size, (i + 1) * self.batch_size) for i in range(full)]
        if rest and not self.drop_last:
            bounds.append((full * self.batch_size, self.shard_size))
        return bounds

    def _groups(self) -> list[list[tuple[int, int]]]:
        """Consecutive batches of equal size, at most ``group`` at a time."""
        groups: list[list[tuple[int, int]]] = []
        for start, stop in self._batch_bounds():
            last = groups[-1] if groups else None
            if last and len(last) < self.group and last[0][1] - last[0][0] == stop - start:
                last.append((start, stop))
            else:
                groups.append([(start, stop)])
        return groups

    def __len__(self) -> int:
        return len(self._groups()) if self.group > 1 else len(self._batch_bounds())

    @property
    def optimizer_steps(self) -> int:
        """Mini-batches per pass, i.e. optimiser steps per epoch, however they are grouped."""
        return len(self._batch_bounds())

    def _order(self) -> torch.Tensor | None:
        """Row indices of this rank's shard, or None for the identity (then batches are views)."""
        n = len(self.x)
        if not self.shuffle and self.world_size == 1:
            return None
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(n, generator=generator)
        else:
            order = torch.arange(n)
        shard = order[self.rank :: self.world_size][: self.shard_size]
        return shard.to(self.x.device, non_blocking=True)

    def __iter__(self) -> Iterator[Batch]:
        order = self._order()
        self.epoch += 1
        if self.group == 1:
            for start, stop in self._batch_bounds():
                yield self._rows(order, start, stop)
            return
        # G x B x D stacks of equal-size mini-batches: one step of Lightning's loop, G optimiser steps.
        for bounds in self._groups():
            x, y = self._rows(order, bounds[0][0], bounds[-1][1])
            size = bounds[0][1] - bounds[0][0]
            yield x.view(len(bounds), size, *x.shape[1:]), y.view(len(bounds), size)

    def _rows(self, order: torch.Tensor | None, start: int, stop: int) -> Batch:
        if order is None:
            return self.x[start:stop], self.y[start:stop]
        idx = order[start:stop]
        return self.x[idx], self.y[idx]


class InMemoryDataModule(L.LightningDataModule):
    """Any registered dataset (see :func:`ipcae.data.available_datasets`) as in-memory tensors.

    Each training batch handed to Lightning stacks up to ``steps_per_batch`` mini-batches
    (G x B x D); the module takes one optimiser step per mini-batch. The arithmetic is the same as
    with one mini-batch per Lightning step; only Lightning's fixed per-step cost (hooks, loop
    bookkeeping, about a millisecond on a CPU) is paid G times less often.

    ``module`` names a module to import first, for datasets registered outside the package
    (``@ipcae.data.register`` in the user's own code).

    ``shuffle`` and ``drop_last`` exist because the reference implementation trains on a fixed
    order and drops the last partial train and validation batch; the paper presets set them so.

    Splits built elsewhere (arrays in memory, see :mod:`ipcae.sklearn`) come in through
    :meth:`from_splits`. Without ``k``, K is the dataset's default, at most the number of features.
    """

    def __init__(
        self,
        name: str,
        data_dir: str | Path | None = None,
        batch_size: int | None = None,
        k: int | None = None,
        shuffle: bool = True,
        drop_last: bool = False,
        drop_last_val: bool = False,
        seed: int = 0,
        steps_per_batch: int = 32,
        eval_batch_size: int = 4096,
        options: dict[str, Any] | None = None,
        module: str | None = None,
        splits: Splits | None = None,
    ) -> None:
        super().__init__()
        if module:
            # A dataset defined outside the package registers itself when its module is imported.
            import_dataset_module(module)
        # Ready splits need no registered loader; their defaults are those of a table.
        info = dataset_info(name if splits is None else "table")
        for key, value in (("batch_size", batch_size), ("steps_per_batch", steps_per_batch),
                           ("eval_batch_size", eval_batch_size)):  # fmt: skip
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise ConfigError(f"data.{key}={value!r} must be a whole number >= 1")
        self.module = module
        self.name = name
        self.data_dir = data_dir
        # None: the dataset's registered defaults (the one place K and batch size are declared).
        self.batch_size = info.batch_size if batch_size is None else batch_size
        self._k_given = k is not None
        self.k = info.k if k is None else k
        self.shuffle, self.drop_last, self.drop_last_val = shuffle, drop_last, drop_last_val
        self.seed = seed
        self.steps_per_batch = steps_per_batch
        self.eval_batch_size = eval_batch_size
        self.options = dict(options or {})
        self.splits: Splits | None = None
        self._on_device: dict[str, Splits] = {}
        # The training batches' epoch counter (it picks each epoch's shuffle), saved in checkpoints
        # so that a resumed run continues the batch order instead of restarting it.
        self._train_batches: IndexBatches | None = None
        self._train_epoch = 0
        if splits is not None:
            self._loaded(splits)

    @classmethod
    def from_splits(cls, splits: Splits, **kwargs: Any) -> InMemoryDataModule:
        """A DataModule over splits already in memory (no loader, nothing read from disk)."""
        return cls(splits.name, splits=splits, **kwargs)

    def _loaded(self, splits: Splits) -> Splits:
        self.splits = splits
        if not self._k_given:
            # A dataset default (50 for tables) must not exceed a small table's width.
            self.k = min(self.k, splits.num_features)
        return splits

    def prepare_data(self) -> None:
        # Runs once per node before setup: downloads and builds caches where needed.
        self.load()

    def setup(self, stage: str | None = None) -> None:
        self.load()
        if stage == "fit" and self.trainer is not None:
            ungroup_for_step_controls(self, self.trainer)

    def load(self) -> Splits:
        if self.splits is None:
            return self._loaded(load_splits(self.name, self.data_dir, **self.options))
        return self.splits

    @property
    def label(self) -> str:
        """The dataset's name in results: the registered name, or a user file's stem (``data=table``)."""
        try:
            path_options = dataset_info(self.name).path_options
        except ConfigError:  # splits handed in from memory under a name of their own
            return self.name
        path = self.options.get(path_options[0]) if path_options else None
        return Path(str(path)).stem if path else self.name

    @property
    def num_features(self) -> int:
        return self.load().num_features

    @property
    def num_classes(self) -> int:
        return self.load().num_classes

    @property
    def feature_names(self) -> list[str]:
        return self.load().feature_names

    def _device_splits(self) -> Splits:
        trainer = self.trainer
        device = trainer.strategy.root_device if trainer is not None else torch.device("cpu")
        key = str(device)
        if key not in self._on_device:
            s = self.load()
            moved = {f: getattr(s, f).to(device) for f in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")}
            self._on_device = {key: dataclasses.replace(s, **moved)}
        return self._on_device[key]

    def _batches(self, split: str, *, train: bool = False, drop_last: bool = False) -> IndexBatches:
        s = self._device_splits()
        trainer = self.trainer
        rank = trainer.global_rank if trainer is not None else 0
        world = trainer.world_size if trainer is not None else 1
        return IndexBatches(
            getattr(s, f"x_{split}"),
            getattr(s, f"y_{split}"),
            per_rank_batch_size(self.batch_size, world) if train else self.batch_size,
            shuffle=train and self.shuffle,
            drop_last=drop_last,
            seed=self.seed,
            rank=rank,
            world_size=world,
            equal_shards=train,
            group=self.steps_per_batch if train else 1,
        )

    def train_dataloader(self) -> IndexBatches:
        batches = self._batches("train", train=True, drop_last=self.drop_last)
        # Once: a later fit on this datamodule (the retrained decoder) starts at epoch 0 as always.
        batches.epoch, self._train_epoch = self._train_epoch, 0
        self._train_batches = batches
        return batches

    def val_dataloader(self) -> IndexBatches:
        return self._eval_batches("val", drop_last=self.drop_last_val)

    def test_dataloader(self) -> IndexBatches:
        return self._eval_batches("test")

    def _eval_batches(self, split: str, *, drop_last: bool = False) -> IndexBatches:
        """Evaluation in as few batches as memory allows: the metrics do not depend on the batching.

        With ``drop_last`` (the reference's quirk) the rows of the last partial training-size batch
        are left out, exactly as batching by ``batch_size`` and dropping it would.
        """
        s = self._device_splits()
        x, y = getattr(s, f"x_{split}"), getattr(s, f"y_{split}")
        if drop_last:
            usable = len(x) // self.batch_size * self.batch_size
            x, y = (x[:usable] if isinstance(x, torch.Tensor) else _Prefix(x, usable)), y[:usable]
        rows = self.eval_batch_size
        if isinstance(x, MappedRows | _Prefix):
            # Batches read from a file are new memory: at most EVAL_BATCH_ELEMENTS values at a time.
            rows = max(1, min(rows, EVAL_BATCH_ELEMENTS // max(s.num_features, 1)))
        trainer = self.trainer
        return IndexBatches(
            x,
            y,
            rows,
            rank=trainer.global_rank if trainer is not None else 0,
            world_size=trainer.world_size if trainer is not None else 1,
        )

    def state_dict(self) -> dict[str, Any]:
        # Stored in checkpoints so that evaluation can reload the same dataset and options, and a
        # resumed run the batch order.
        epoch = self._train_batches.epoch if self._train_batches is not None else self._train_epoch
        return {"name": self.name, "options": self.options, "module": self.module, "train_epoch": epoch}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        # Called before the training batches are made (Lightning restores, then builds loaders);
        # only a resumed fit continues the order (validate / test at a checkpoint restore too).
        if self.trainer is not None and self.trainer.state.fn == "fit":
            self._train_epoch = int(state_dict.get("train_epoch", 0))


# Memory-mapped features are evaluated in batches of at most this many values (2**25: 128 MiB).
EVAL_BATCH_ELEMENTS = 1 << 25


class _Prefix:
    """The first ``n`` rows of sparse or memory-mapped rows (the reference's dropped last batch)."""

    def __init__(self, rows: Any, n: int) -> None:
        self.rows, self.n = rows, n

    def __len__(self) -> int:
        return self.n

    @property
    def device(self) -> torch.device:
        return self.rows.device

    def __getitem__(self, index: slice | torch.Tensor) -> torch.Tensor:
        if isinstance(index, slice):
            index = slice(*index.indices(self.n))
        return self.rows[index]


def per_rank_batch_size(batch_size: int, world_size: int) -> int:
    """``data.batch_size`` is global: under DDP each of the N ranks takes batch_size / N rows per step.

    So the effective batch, the number of optimiser steps per epoch and with them the results do not
    depend on how many processes share the work (up to the order of floating-point sums).
    """
    if world_size <= 1:
        return batch_size
    if batch_size % world_size:
        raise ConfigError(
            f"data.batch_size={batch_size} is the global batch and must divide over the {world_size} "
            f"processes: use a multiple of {world_size}"
        )
    return batch_size // world_size


def step_controls(trainer: L.Trainer) -> list[str]:
    """Trainer settings that Lightning counts in its batches, which must then be optimiser steps."""
    active = []
    if trainer.max_steps not in (None, -1):
        active.append(f"max_steps={trainer.max_steps}")
    limit = trainer.limit_train_batches
    # An int counts batches (1 is one batch); the float 1.0 means all of them.
    if isinstance(limit, int) or (limit is not None and limit != 1.0):
        active.append(f"limit_train_batches={limit}")
    interval = trainer.val_check_interval
    if isinstance(interval, int) or (interval is not None and interval != 1.0):
        active.append(f"val_check_interval={interval}")
    return active


def ungroup_for_step_controls(datamodule: InMemoryDataModule, trainer: L.Trainer) -> None:
    """One optimiser step per Lightning batch when a trainer setting counts batches.

    ``max_steps``, ``limit_train_batches`` and ``val_check_interval`` count Lightning batches, each
    of which holds ``steps_per_batch`` optimiser steps when grouped: ``limit_train_batches=1`` would
    train 32 steps and ``max_steps`` overshoot. Grouping never changes the arithmetic, so it is simply
    turned off for such runs.
    """
    active = step_controls(trainer)
    if active and datamodule.steps_per_batch != 1:
        log.info(
            "data.steps_per_batch=%d -> 1: %s count(s) optimiser steps exactly only without grouping",
            datamodule.steps_per_batch,
            ", ".join(active),
        )
        datamodule.steps_per_batch = 1
