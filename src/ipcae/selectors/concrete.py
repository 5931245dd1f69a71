"""Concrete selectors: K categorical distributions over D features, relaxed in training.

A concrete selector owns (directly or not) a K x D logit matrix ``log_alpha``. In training the
forward pass draws a Gumbel-softmax sample of the selection; in evaluation it picks the argmax
feature of each row, duplicates included (the decoder then sees the same feature twice, which is
part of what the Unique Percentage measures).
"""

from __future__ import annotations

from abc import abstractmethod

import torch
from torch import Tensor, nn

from ipcae.errors import ConfigError
from ipcae.gumbel import NOISE_MODES, relaxed_select
from ipcae.metrics import gjsd, mean_max_probability
from ipcae.selectors.base import FeatureSelector, TemperatureControlled


class ConcreteSelector(TemperatureControlled, FeatureSelector):
    """The concrete family: subclasses define :meth:`logits`; sampling, selection and GJSD are shared.

    ``diversity_weight`` (lambda) adds ``-lambda * GJSD(softmax(log_alpha))`` to the training loss,
    rewarding rows that pick different features (the GJSD baseline with the direct selector).
    ``noise`` is ``per_example`` (a fresh B x K x D Gumbel draw, as the reference) or ``per_batch``
    (one K x D draw shared by the batch; selection becomes one matrix product).
    """

    def __init__(self, num_features: int, k: int, noise: str = "per_example", diversity_weight: float = 0.0) -> None:
        super().__init__(num_features, k)
        if noise not in NOISE_MODES:
            raise ConfigError(f"model.selector.noise={noise!r} is unknown: use one of {', '.join(NOISE_MODES)}")
        if not diversity_weight >= 0:
            raise ConfigError(f"model.selector.diversity_weight={diversity_weight} must be >= 0")
        self.noise = noise
        self.diversity_weight = diversity_weight
        self.init_temperature()

    @abstractmethod
    def logits(self) -> Tensor:
        """The K x D matrix log_alpha."""

    def probabilities(self) -> Tensor:
        """Noise-free selection probabilities softmax(log_alpha), K x D."""
        return torch.softmax(self.logits(), dim=-1)

    def selected_indices(self) -> Tensor:
        """The feature each of the K rows selects (argmax of log_alpha), in row order."""
        return self.logits().argmax(dim=-1)

    def selected_probabilities(self) -> Tensor:
        probs = self.probabilities()
        return probs.gather(1, probs.argmax(dim=-1, keepdim=True)).squeeze(1)

    def regularization(self) -> Tensor | float:
        if self.diversity_weight == 0:
            return 0.0
        return -self.diversity_weight * gjsd(self.probabilities())

    def forward_train(self, x: Tensor) -> Tensor:
        return relaxed_select(x, self.logits(), self.temperature, self.noise)

    def forward_eval(self, x: Tensor) -> Tensor:
        return x[:, self.logits().argmax(dim=-1)]

    def diagnostics(self) -> dict[str, Tensor | float]:
        """``max_prob``: mean over rows of the largest probability (1 once converged);
        ``gjsd``: diversity of the K rows, in [0, log K]."""
        probs = self.probabilities()
        return {"max_prob": mean_max_probability(probs), "gjsd": gjsd(probs)}


class DirectSelector(ConcreteSelector):
    """CAE: log_alpha is a free K x D parameter.

    ``init="uniform"`` (the reference): U(0, 1) entries with each row divided by its sum, so
    every row starts nearly uniform. ``init="glorot_normal"``: the original Keras CAE.
    """

    def __init__(self, num_features: int, k: int, init: str = "uniform", **kwargs) -> None:
        super().__init__(num_features, k, **kwargs)
        log_alpha = torch.empty(k, num_features)
        if init == "uniform":
            log_alpha.uniform_(0.0, 1.0)
            log_alpha /= log_alpha.sum(dim=1, keepdim=True)
        elif init == "glorot_normal":
            nn.init.xavier_normal_(log_alpha)
        else:
            raise ConfigError(f"model.selector.init={init!r} is unknown: use uniform or glorot_normal")
        self.log_alpha = nn.Parameter(log_alpha)

    def logits(self) -> Tensor:
        return self.log_alpha


class IndirectSelector(ConcreteSelector):
    """IP-CAE: log_alpha = Psi W^T + b, an embedding Psi (K x P) through one shared affine map.

    Psi ~ N(0, 1); W (D x P) and b use PyTorch's default ``nn.Linear`` initialisation.
    ``embedding_dim`` is P and defaults to D (the reference); W then holds D^2 parameters, so for
    large D choose P << D (e.g. 64-512).
    """

    def __init__(self, num_features: int, k: int, embedding_dim: int | None = None, **kwargs) -> None:
        super().__init__(num_features, k, **kwargs)
        p = num_features if embedding_dim is None else embedding_dim
        if not isinstance(p, int) or isinstance(p, bool) or p < 1:
            raise ConfigError(f"model.selector.embedding_dim={embedding_dim!r} must be a positive integer or null")
        self.embedding = nn.Parameter(torch.randn(k, p))
        self.projection = nn.Linear(p, num_features)

    def logits(self) -> Tensor:
        return self.projection(self.embedding)
