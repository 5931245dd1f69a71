"""The public selector interface: what the training module, callbacks and results need of a selector.

A selector maps a batch x (B x D) to what the decoder reads (B x ``out_features``). Subclass
:class:`FeatureSelector`, implement the abstract methods, and point a YAML in
``conf/model/selector/`` at the class; nothing else in the framework needs to know about it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import torch
from torch import Tensor, nn

from ipcae.data.rows import is_sparse, select_columns
from ipcae.errors import ConfigError


def check_k(k: int, num_features: int) -> None:
    """K must be a whole number of features between 1 and D."""
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= num_features:
        raise ConfigError(
            f"model.k={k!r} is out of range for a dataset with {num_features} features: "
            f"choose 1 <= model.k <= {num_features}"
        )


class FeatureSelector(nn.Module, ABC):
    """Chooses K of D input features, jointly trained with a decoder.

    The module calls :meth:`forward` (which dispatches on ``self.training``), adds
    :meth:`regularization` to the training loss, and builds its decoder for ``out_features``
    inputs. After training, :meth:`selected_indices` is the answer (K indices in row order,
    duplicates allowed where the method allows them). :meth:`diagnostics` is logged once per
    epoch under ``train/<name>``; :meth:`selected_probabilities` goes to ``selected_features.csv``.

    Selectors constructed from a config get ``num_features`` and ``k`` from the framework and any
    other keyword from their YAML.

    Sparse data (:class:`ipcae.data.rows.SparseRows`) arrives as ``torch.sparse_csr`` batches. A
    selector that sets ``accepts_sparse = True`` receives them as they are (and keeps them sparse:
    products, :func:`~ipcae.data.rows.select_columns`, :func:`~ipcae.data.rows.scale_columns`);
    any other receives each batch densified (B x D), which is correct but not memory-lean.
    """

    accepts_sparse: ClassVar[bool] = False

    def __init__(self, num_features: int, k: int) -> None:
        super().__init__()
        check_k(k, num_features)
        self.num_features, self.k = num_features, k

    @property
    def out_features(self) -> int:
        """Width of what the decoder receives (K unless the selector passes all D features, as gates do)."""
        return self.k

    @property
    def reports_retrained(self) -> bool:
        """Whether the method is reported through a decoder retrained on its K features: its joint decoder
        reads more than K (gates, SAND's noisy input, a masked top-k) and would not compare."""
        return self.out_features != self.k

    def forward(self, x: Tensor) -> Tensor:
        if not self.accepts_sparse and is_sparse(x):
            x = x.to_dense()
        return self.forward_train(x) if self.training else self.forward_eval(x)

    @abstractmethod
    def forward_train(self, x: Tensor) -> Tensor:
        """The (relaxed, stochastic) selection used for gradient steps."""

    def forward_eval(self, x: Tensor) -> Tensor:
        """The hard selection used for validation and test: the selected columns."""
        return select_columns(x, self.selected_indices())

    @abstractmethod
    def selected_indices(self) -> Tensor:
        """The K selected features (int64, in row order)."""

    def regularization(self) -> Tensor | float:
        """The selector's own term of the training loss."""
        return 0.0

    def selected_probabilities(self) -> Tensor:
        """How sure the selector is of each of its K selected features, in [0, 1] (default: 1)."""
        return torch.ones(self.k, device=self.selected_indices().device)

    def diagnostics(self) -> dict[str, Tensor | float]:
        """Per-epoch values to log (without the ``train/`` prefix); computed without gradients."""
        return {}


class TemperatureControlled:
    """Mixin for selectors with a relaxation temperature that a schedule anneals.

    The temperature is a buffer, so it follows the module's device, is restored from checkpoints,
    and is overwritten in place (no host synchronisation).
    """

    temperature: Tensor

    def init_temperature(self, value: float = 10.0) -> None:
        self.register_buffer("temperature", torch.tensor(float(value)))  # type: ignore[attr-defined]

    def set_temperature(self, value: float) -> None:
        self.temperature.fill_(value)


class StepScheduled:
    """Mixin for selectors whose training follows a schedule over the optimiser steps (Sequential Attention).

    The selector counts its own training forward passes (one per optimiser step in this framework's
    module); what it cannot know is how many there will be. The :class:`ipcae.schedule.TrainingSteps`
    callback tells it through :meth:`set_total_steps` when training starts.
    """

    def set_total_steps(self, total: int) -> None:
        raise NotImplementedError
