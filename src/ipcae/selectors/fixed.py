"""A fixed selection: the retrained-decoder evaluation of indices chosen elsewhere."""

from __future__ import annotations

import torch
from torch import Tensor

from ipcae.data.rows import select_columns
from ipcae.errors import ConfigError
from ipcae.selectors.base import FeatureSelector


class FixedSelector(FeatureSelector):
    """Always the same K features (given indices), with nothing to learn."""

    accepts_sparse = True  # a column gather

    def __init__(self, num_features: int, k: int, indices: list[int]) -> None:
        super().__init__(num_features, k)
        if len(indices) != k or not all(isinstance(i, int) and 0 <= i < num_features for i in indices):
            raise ConfigError(
                f"model.selector.indices={list(indices)} must be {k} feature indices in 0..{num_features - 1}"
            )
        self.register_buffer("indices", torch.as_tensor(indices, dtype=torch.long))

    def selected_indices(self) -> Tensor:
        return self.indices

    def forward_train(self, x: Tensor) -> Tensor:
        return select_columns(x, self.indices)
