"""Feature selectors: K categorical distributions over D features, relaxed in training.

Every selector owns (directly or not) a K x D logit matrix ``log_alpha``. In training mode the
forward pass draws a Gumbel-softmax sample of the selection; in evaluation mode it picks the argmax
feature of each row, duplicates included (the decoder then sees the same feature twice, which is
part of what the Unique Percentage measures).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ipcae.errors import ConfigError
from ipcae.gumbel import NOISE_MODES, relaxed_select
from ipcae.metrics import gjsd


def check_k(k: int, num_features: int) -> None:
    """K must be a whole number of features between 1 and D."""
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= num_features:
        raise ConfigError(
            f"model.k={k!r} is out of range for a dataset with {num_features} features: "
            f"choose 1 <= model.k <= {num_features}"
        )


class Selector(nn.Module):
    """Base class: subclasses define :meth:`logits`; the rest is shared.

    ``diversity_weight`` (lambda) adds ``-lambda * GJSD(softmax(log_alpha))`` to the training loss,
    rewarding rows that pick different features (the GJSD baseline when used with the direct
    selector). ``noise`` is ``per_example`` (a fresh B x K x D Gumbel draw, as the reference) or
    ``per_batch`` (one K x D draw shared by the batch; selection becomes one matrix product).
    """

    def __init__(self, num_features: int, k: int, noise: str = "per_example", diversity_weight: float = 0.0) -> None:
        super().__init__()
        check_k(k, num_features)
        if noise not in NOISE_MODES:
            raise ConfigError(f"model.selector.noise={noise!r} is unknown: use one of {', '.join(NOISE_MODES)}")
        if diversity_weight < 0:
            raise ConfigError(f"model.selector.diversity_weight={diversity_weight} must be >= 0")
        self.num_features, self.k = num_features, k
        self.noise = noise
        self.diversity_weight = diversity_weight
        # A buffer, so it follows the module's device and is restored from checkpoints; the
        # temperature callback overwrites it in place, which needs no host synchronisation.
        self.register_buffer("temperature", torch.tensor(10.0))

    @property
    def out_features(self) -> int:
        """Width of what the decoder receives: K for the concrete selectors."""
        return self.k

    def logits(self) -> Tensor:
        """The K x D matrix log_alpha."""
        raise NotImplementedError

    def probabilities(self) -> Tensor:
        """Noise-free selection probabilities softmax(log_alpha), K x D."""
        return torch.softmax(self.logits(), dim=-1)

    def selected_indices(self) -> Tensor:
        """The feature each of the K rows selects (argmax of log_alpha), in row order."""
        return self.logits().argmax(dim=-1)

    def set_temperature(self, value: float) -> None:
        self.temperature.fill_(value)

    def regularization(self) -> Tensor | float:
        """The selector's term of the training loss (0 unless a diversity weight is set)."""
        if self.diversity_weight == 0:
            return 0.0
        return -self.diversity_weight * gjsd(self.probabilities())

    def forward(self, x: Tensor) -> Tensor:
        log_alpha = self.logits()
        if self.training:
            return relaxed_select(x, log_alpha, self.temperature, self.noise)
        return x[:, log_alpha.argmax(dim=-1)]


class DirectSelector(Selector):
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


class IndirectSelector(Selector):
    """IP-CAE: log_alpha = Psi W^T + b, an embedding Psi (K x P) through one shared affine map.

    Psi ~ N(0, 1); W (D x P) and b use PyTorch's default ``nn.Linear`` initialisation.
    ``embedding_dim`` is P and defaults to D.
    """

    def __init__(self, num_features: int, k: int, embedding_dim: int | None = None, **kwargs) -> None:
        super().__init__(num_features, k, **kwargs)
        p = embedding_dim or num_features
        if p < 1:
            raise ConfigError(f"model.selector.embedding_dim={embedding_dim} must be a positive integer")
        self.embedding = nn.Parameter(torch.randn(k, p))
        self.projection = nn.Linear(p, num_features)

    def logits(self) -> Tensor:
        return self.projection(self.embedding)


class FixedSelector(Selector):
    """Always the same K features (given indices), with nothing to learn.

    Used to retrain a fresh decoder on the features another method selected.
    """

    def __init__(self, num_features: int, k: int, indices: list[int], **kwargs) -> None:
        super().__init__(num_features, k, **kwargs)
        if len(indices) != k or not all(0 <= i < num_features for i in indices):
            raise ConfigError(f"indices={indices} must be {k} feature indices in 0..{num_features - 1}")
        self.register_buffer("indices", torch.as_tensor(indices, dtype=torch.long))

    def logits(self) -> Tensor:
        # One-hot rows, so that probabilities and diagnostics describe the fixed choice.
        return torch.nn.functional.one_hot(self.indices, self.num_features).float() * 1e4

    def selected_indices(self) -> Tensor:
        return self.indices

    def forward(self, x: Tensor) -> Tensor:
        return x[:, self.indices]


class STGSelector(Selector):
    """Stochastic gates (Yamada et al., 2020): one Gaussian-relaxed Bernoulli gate per feature.

    In training, z_d = clamp(mu_d + sigma * eps, 0, 1) with eps ~ N(0, 1) drawn per example and
    feature, and the decoder sees the gated input x * z (all D features). The training loss gets
    ``l0_weight * sum_d Phi(mu_d / sigma)``, the expected number of open gates. In evaluation the
    gates are deterministic, clamp(mu, 0, 1). The selection is the K features with the largest mu.
    """

    def __init__(
        self, num_features: int, k: int, sigma: float = 0.5, l0_weight: float = 0.1, mu_init: float = 0.5, **kwargs
    ) -> None:
        super().__init__(num_features, k, **kwargs)
        if sigma <= 0 or l0_weight < 0:
            raise ConfigError(f"STG needs sigma > 0 and l0_weight >= 0 (got sigma={sigma}, l0_weight={l0_weight})")
        self.sigma, self.l0_weight = sigma, l0_weight
        self.mu = nn.Parameter(torch.full((num_features,), float(mu_init)))

    @property
    def out_features(self) -> int:
        return self.num_features

    def selected_indices(self) -> Tensor:
        return torch.topk(self.mu, self.k).indices

    def logits(self) -> Tensor:
        # One-hot rows of the current top-K selection, for the selection diagnostics.
        return torch.nn.functional.one_hot(self.selected_indices(), self.num_features).float() * 1e4

    def regularization(self) -> Tensor:
        normal = torch.distributions.Normal(0.0, 1.0)
        return self.l0_weight * normal.cdf(self.mu / self.sigma).sum()

    def forward(self, x: Tensor) -> Tensor:
        if self.training:
            noise = torch.randn_like(x) * self.sigma
            gates = (self.mu + noise).clamp(0.0, 1.0)
        else:
            gates = self.mu.clamp(0.0, 1.0)
        return x * gates
