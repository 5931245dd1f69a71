"""The in-memory representation every dataset loader returns."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import ArrayLike

from ipcae.data.rows import MappedRows, SparseRows
from ipcae.errors import DataError

Features = torch.Tensor | SparseRows | MappedRows


@dataclass(frozen=True)
class Splits:
    """Train / validation / test tensors of one dataset, ready for training.

    ``x_*`` are float32 matrices (rows = examples, columns = features) and ``y_*`` int64 class
    labels in ``0..num_classes-1`` (float32 targets for regression, with ``num_classes`` 0).
    Features too large for a dense tensor are a :class:`~ipcae.data.rows.SparseRows` or
    :class:`~ipcae.data.rows.MappedRows` instead (see :attr:`in_memory`).
    Reconstruction tasks ignore the labels. ``class_names`` names the classes where the source
    did (string labels of a table), for results.json.
    """

    name: str
    x_train: Features
    y_train: torch.Tensor
    x_val: Features
    y_val: torch.Tensor
    x_test: Features
    y_test: torch.Tensor
    feature_names: list[str]
    num_classes: int
    class_names: list[str] | None = None

    def __post_init__(self) -> None:
        # Row-major storage whatever the loader produced (a scaler can hand back column-major
        # arrays): batches are gathered by row, and flattening metrics need a plain layout.
        for name in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
            if isinstance(getattr(self, name), torch.Tensor):
                object.__setattr__(self, name, getattr(self, name).contiguous())
        width = {t.shape[1] for t in (self.x_train, self.x_val, self.x_test)}
        if width != {len(self.feature_names)}:
            raise ValueError(
                f"{self.name}: feature matrices have {sorted(width)} columns "
                f"but there are {len(self.feature_names)} feature names"
            )
        for x, y in ((self.x_train, self.y_train), (self.x_val, self.y_val), (self.x_test, self.y_test)):
            if x.shape[0] != y.shape[0]:
                raise ValueError(f"{self.name}: {x.shape[0]} rows but {y.shape[0]} labels")
        if self.class_names is not None and len(self.class_names) != self.num_classes:
            raise ValueError(f"{self.name}: {len(self.class_names)} class names for {self.num_classes} classes")
        # A NaN in validation freezes model selection (NaN is never "lower") and one in training
        # diverges the run: refuse them here, naming the split, rather than report such numbers.
        # (A memory-mapped file is checked by its loader, block by block, before it gets here.)
        for split in ("train", "val", "test"):
            x = getattr(self, f"x_{split}")
            if isinstance(x, SparseRows):
                bad = x.non_finite()
                where = ""
            elif isinstance(x, torch.Tensor) and x.is_floating_point():
                bad, rows = _non_finite(x)
                where = f" in {rows} rows"
            else:
                bad = 0
            if bad:
                raise DataError(
                    f"{self.name}: the {split} split has {bad} NaN or infinite values{where}: "
                    "impute or drop them before training (see the dataset's options)"
                )

    @classmethod
    def from_arrays(
        cls,
        name: str,
        train: tuple[ArrayLike, ArrayLike],
        val: tuple[ArrayLike, ArrayLike],
        test: tuple[ArrayLike, ArrayLike],
        feature_names: list[str],
        num_classes: int,
        class_names: list[str] | None = None,
        y_dtype: torch.dtype = torch.int64,
    ) -> Splits:
        """Build from numpy-like (features, labels) pairs, converting dtypes (``y_dtype``: float32 for regression)."""

        def tensors(pair: tuple[ArrayLike, ArrayLike]) -> tuple[torch.Tensor, torch.Tensor]:
            x, y = pair
            return torch.as_tensor(np.asarray(x), dtype=torch.float32), torch.as_tensor(np.asarray(y), dtype=y_dtype)

        names = None if class_names is None else [str(c) for c in class_names]
        return cls(name, *tensors(train), *tensors(val), *tensors(test), list(feature_names), num_classes, names)

    @property
    def in_memory(self) -> bool:
        """Whether the features are dense tensors (not sparse rows or a memory-mapped file)."""
        return all(isinstance(getattr(self, f"x_{s}"), torch.Tensor) for s in ("train", "val", "test"))

    @property
    def num_features(self) -> int:
        return len(self.feature_names)

    @property
    def sizes(self) -> tuple[int, int, int]:
        return (len(self.x_train), len(self.x_val), len(self.x_test))


# Rows checked at a time for NaN: bounds the check's own memory (a bool and its count per block) at
# any width; a whole-matrix check would hold N x D temporaries (an int64 count is twice the data).
_CHECK_BLOCK_ELEMENTS = 1 << 24


def _non_finite(x: torch.Tensor) -> tuple[int, int]:
    """(NaN or infinite values, rows holding any) of a float matrix, block by block."""
    bad = rows = 0
    step = max(1, _CHECK_BLOCK_ELEMENTS // max(x.shape[1], 1)) if x.dim() == 2 else len(x)
    for start in range(0, len(x), step):
        block = ~torch.isfinite(x[start : start + step])
        if block.any():
            bad += int(block.sum())
            rows += int(block.reshape(len(block), -1).any(dim=1).sum())
    return bad, rows


SPLIT_SEED = 42


def reference_split_80_20(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Train / validation row indices of ``random_split`` 80/20 with a fresh generator seeded 42.

    Integer lengths (``int(0.8 * n)`` and the rest) reproduce the reference's sizes (ISOLET
    4,990 / 1,248, HAR 5,881 / 1,471), where fractional lengths [0.8, 0.2] would round the other way.
    The permutation is the same either way.
    """
    from torch.utils.data import random_split

    n_train = int(0.8 * n)
    train, val = random_split(range(n), [n_train, n - n_train], generator=torch.Generator().manual_seed(SPLIT_SEED))
    return np.asarray(train.indices), np.asarray(val.indices)
