"""Feature matrices that are not dense tensors in memory: sparse rows and memory-mapped ``.npy``.

A split's ``x`` is usually a dense float32 tensor. Two other stores serve data that would not fit
that way (10^5-10^6 features):

- :class:`SparseRows`: compressed sparse rows (CSR) as three tensors on the training device. A
  batch is a ``torch.sparse_csr`` tensor; selectors that accept it compute their selection as a
  sparse-dense product (``x @ M^T``) and the hard selection as a column gather
  (:func:`select_columns`), so no B x D dense matrix is ever formed for them.
- :class:`MappedRows`: a ``.npy`` file opened with ``numpy.load(mmap_mode="r")`` and the row
  numbers of one split. A batch is read from the file, scaled, and handed over as a dense tensor:
  memory holds the batches, never the matrix (the operating system caches the file's pages as it
  sees fit and can drop them).

Both answer what the batches and the results need of a split: ``len``, ``shape``, rows by slice or
index tensor (``x[a:b]``, ``x[idx]``), ``.to(device)`` and :meth:`columns` (the selected features of
every row, for the retrained decoder and the LassoNet ranking).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import torch
from torch import Tensor

# Batches are built from valid CSR arrays here, so torch's per-tensor invariant checks are off
# (explicitly, which also keeps torch from warning about it); its beta notice says nothing to users.
warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")

# The largest block of a memory-mapped matrix read at once while scanning it (statistics,
# finiteness): 2**24 float32 values, 64 MiB.
SCAN_BLOCK_ELEMENTS = 1 << 24


def is_sparse(x: Any) -> bool:
    """Whether a batch is a sparse CSR tensor (what :class:`SparseRows` hands out)."""
    return isinstance(x, Tensor) and x.layout == torch.sparse_csr


def to_dense(x: Tensor) -> Tensor:
    """A sparse batch as a dense one; a dense one as it is."""
    return x.to_dense() if is_sparse(x) else x


def _row_of_each_value(x: Tensor) -> Tensor:
    crow = x.crow_indices()
    return torch.repeat_interleave(torch.arange(x.shape[0], device=crow.device), crow.diff())


def select_columns(x: Tensor, indices: Tensor) -> Tensor:
    """``x[:, indices]`` (B x K, dense), for dense and sparse CSR batches; repeated indices repeat columns.

    For a sparse batch the values whose column is selected are scattered into a B x U matrix
    (U distinct indices) and the K columns read from it: the cost is that of the non-zeros.
    """
    if not is_sparse(x):
        return x[:, indices]
    unique, inverse = torch.unique(indices, return_inverse=True)
    lookup = torch.full((x.shape[1],), -1, dtype=torch.long, device=x.device)
    lookup[unique] = torch.arange(len(unique), device=x.device)
    position = lookup[x.col_indices()]
    keep = position >= 0
    out = torch.zeros(x.shape[0], len(unique), dtype=x.dtype, device=x.device)
    out.index_put_((_row_of_each_value(x)[keep], position[keep]), x.values()[keep], accumulate=True)
    return out[:, inverse]


def scale_columns(x: Tensor, factor: Tensor) -> Tensor:
    """``x * factor`` with ``factor`` of shape D (every row) or B x D; sparse stays sparse.

    The product is differentiable in ``factor`` either way (STG's gates).
    """
    if not is_sparse(x):
        return x * factor
    columns = x.col_indices()
    per_value = factor[columns] if factor.dim() == 1 else factor[_row_of_each_value(x), columns]
    return torch.sparse_csr_tensor(
        x.crow_indices(), columns, x.values() * per_value, size=x.shape, check_invariants=False
    )


class SparseRows:
    """The rows of a CSR matrix (float32 values), on one device, batched as sparse CSR tensors."""

    def __init__(self, crow: Tensor, col: Tensor, values: Tensor, num_features: int) -> None:
        if crow.dim() != 1 or col.shape != values.shape or int(crow[-1]) != len(values):
            raise ValueError("SparseRows: crow, col and values do not describe one CSR matrix")
        self.crow, self.col, self.values = crow.long(), col.long(), values.float()
        self.num_features = int(num_features)

    @classmethod
    def from_scipy(cls, matrix: Any) -> SparseRows:
        """From any ``scipy.sparse`` matrix (converted to CSR with sorted indices)."""
        csr = matrix.tocsr()
        csr.sort_indices()
        return cls(
            torch.from_numpy(csr.indptr.astype(np.int64)),
            torch.from_numpy(csr.indices.astype(np.int64)),
            torch.from_numpy(np.asarray(csr.data, dtype=np.float32)),
            csr.shape[1],
        )

    def __len__(self) -> int:
        return len(self.crow) - 1

    @property
    def shape(self) -> tuple[int, int]:
        return (len(self), self.num_features)

    @property
    def device(self) -> torch.device:
        return self.values.device

    @property
    def nnz(self) -> int:
        return len(self.values)

    @property
    def nbytes(self) -> int:
        return sum(t.element_size() * t.numel() for t in (self.crow, self.col, self.values))

    def to(self, device: torch.device | str) -> SparseRows:
        if torch.device(device) == self.device:
            return self
        return SparseRows(self.crow.to(device), self.col.to(device), self.values.to(device), self.num_features)

    def __getitem__(self, index: slice | Tensor) -> Tensor:
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            if step != 1:
                index = torch.arange(start, stop, step, device=self.device)
            else:
                lo, hi = int(self.crow[start]), int(self.crow[stop])
                crow = self.crow[start : stop + 1] - lo
                return self._batch(crow, self.col[lo:hi], self.values[lo:hi])
        index = torch.as_tensor(index, device=self.device).long()
        starts = self.crow[index]
        lengths = self.crow[index + 1] - starts
        crow = torch.zeros(len(index) + 1, dtype=torch.long, device=self.device)
        torch.cumsum(lengths, 0, out=crow[1:])
        total = int(crow[-1])
        # Position of every kept value in the source: its row's start plus its offset in the row.
        offsets = torch.arange(total, device=self.device)
        offsets -= torch.repeat_interleave(crow[:-1], lengths, output_size=total)
        source = torch.repeat_interleave(starts, lengths, output_size=total) + offsets
        return self._batch(crow, self.col[source], self.values[source])

    def _batch(self, crow: Tensor, col: Tensor, values: Tensor) -> Tensor:
        return torch.sparse_csr_tensor(
            crow, col, values, size=(len(crow) - 1, self.num_features), check_invariants=False
        )

    def columns(self, indices: Tensor | None = None) -> Tensor:
        """Every row's features ``indices`` (all of them when None), as a dense tensor."""
        batch = self[0 : len(self)]
        return batch.to_dense() if indices is None else select_columns(batch, torch.as_tensor(indices).long())

    def non_finite(self) -> int:
        return int((~torch.isfinite(self.values)).sum())


class MappedRows:
    """Rows ``rows`` of a 2-D array on disk (``numpy.load(mmap_mode="r")``), read batch by batch.

    ``offset`` and ``scale`` (length D) standardise each batch as it is read: (x - offset) / scale.
    Batches are float32 tensors on ``device``.
    """

    def __init__(
        self,
        array: np.ndarray,
        rows: np.ndarray,
        offset: np.ndarray | None = None,
        scale: np.ndarray | None = None,
        device: torch.device | str = "cpu",
    ) -> None:
        if array.ndim != 2:
            raise ValueError(f"MappedRows: the array must be a matrix, got shape {array.shape}")
        self.array, self.rows = array, np.asarray(rows, dtype=np.int64)
        self.offset = None if offset is None else np.asarray(offset, dtype=np.float32)
        self.scale = None if scale is None else np.asarray(scale, dtype=np.float32)
        self._device = torch.device(device)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def shape(self) -> tuple[int, int]:
        return (len(self.rows), self.array.shape[1])

    @property
    def device(self) -> torch.device:
        return self._device

    def to(self, device: torch.device | str) -> MappedRows:
        if torch.device(device) == self._device:
            return self
        return MappedRows(self.array, self.rows, self.offset, self.scale, device)

    def _read(self, rows: np.ndarray, columns: np.ndarray | None = None) -> np.ndarray:
        # Rows in file order (one pass over the file), then back in the order asked for.
        order = np.argsort(rows, kind="stable")
        block = self.array[rows[order]] if columns is None else self.array[rows[order]][:, columns]
        block = np.asarray(block, dtype=np.float32)
        if self.offset is not None:
            block -= self.offset if columns is None else self.offset[columns]
        if self.scale is not None:
            block /= self.scale if columns is None else self.scale[columns]
        out = np.empty_like(block)
        out[order] = block
        return out

    def __getitem__(self, index: slice | Tensor) -> Tensor:
        rows = self.rows[index] if isinstance(index, slice) else self.rows[torch.as_tensor(index).cpu().numpy()]
        return torch.from_numpy(self._read(rows)).to(self._device)

    def columns(self, indices: Tensor | None = None) -> Tensor:
        """Every row's features ``indices`` (all of them when None), as a dense tensor, read in blocks."""
        cols = None if indices is None else torch.as_tensor(indices).long().cpu().numpy()
        step = max(1, SCAN_BLOCK_ELEMENTS // self.array.shape[1])
        parts = [self._read(self.rows[i : i + step], cols) for i in range(0, len(self.rows), step)]
        return torch.from_numpy(np.concatenate(parts)).to(self._device)


def scan_blocks(array: np.ndarray, rows: np.ndarray) -> Any:
    """Consecutive blocks of ``array[rows]`` (sorted rows) of at most :data:`SCAN_BLOCK_ELEMENTS` values."""
    step = max(1, SCAN_BLOCK_ELEMENTS // max(array.shape[1], 1))
    rows = np.sort(rows)
    for i in range(0, len(rows), step):
        yield np.asarray(array[rows[i : i + step]])


def dense_bytes(shape: tuple[int, int]) -> int:
    """Bytes of a float32 matrix of this shape."""
    return 4 * math.prod(shape)
