"""Every feature: the decoder on all D inputs, the reference line that a selection of K is compared with."""

from __future__ import annotations

import torch
from torch import Tensor

from ipcae.selectors.base import FeatureSelector


class AllFeatures(FeatureSelector):
    """Selects all D features (K is set to D whatever the config says), with nothing to learn.

    Sparse batches pass through: the decoder's first linear layer multiplies them as they are.
    """

    accepts_sparse = True

    def __init__(self, num_features: int, k: int) -> None:
        super().__init__(num_features, num_features)
        self.register_buffer("indices", torch.arange(num_features))

    def selected_indices(self) -> Tensor:
        return self.indices

    def forward_train(self, x: Tensor) -> Tensor:
        return x

    def forward_eval(self, x: Tensor) -> Tensor:
        return x
