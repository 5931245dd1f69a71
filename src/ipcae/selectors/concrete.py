"""Concrete selectors: K categorical distributions over D features, relaxed in training.

A concrete selector owns (directly or not) a K x D logit matrix ``log_alpha``. In training the
forward pass draws a Gumbel-softmax sample of the selection; in evaluation it picks the argmax
feature of each row, duplicates included (the decoder then sees the same feature twice, which is
part of what the Unique Percentage measures).
"""

from __future__ import annotations

import logging
from abc import abstractmethod

import torch
from torch import Tensor, nn

from ipcae.data.rows import is_sparse, select_columns
from ipcae.errors import ConfigError
from ipcae.gumbel import NOISE_MODES, auto_noise, relaxed_select
from ipcae.gumbel import max_noise_elements as _budget
from ipcae.metrics import gjsd, mean_max_probability
from ipcae.selectors.base import FeatureSelector, TemperatureControlled

log = logging.getLogger("ipcae")

# Above this, IndirectSelector refuses P = D (the D x D map): 2 GiB of float32 parameters is
# D = 23,170; Adam's two moments triple it.
DEFAULT_MAX_MAP_GIB = 2.0
SUGGESTED_EMBEDDING_DIM = 256


class ConcreteSelector(TemperatureControlled, FeatureSelector):
    """The concrete family: subclasses define :meth:`logits`; sampling, selection and GJSD are shared.

    ``diversity_weight`` (lambda) adds ``-lambda * GJSD(softmax(log_alpha))`` to the training loss,
    rewarding rows that pick different features (the GJSD baseline with the direct selector).
    ``noise`` is ``per_example`` (a fresh B x K x D Gumbel draw, as the reference), ``per_batch``
    (one K x D draw shared by the batch; selection becomes one matrix product) or ``auto``:
    per-example unless one example's K x D draw alone exceeds the budget, then per-batch; the
    choice and its reason are logged once (INFO, logger ``ipcae``) and ``self.noise`` holds it.

    ``max_noise_elements`` (None: :data:`ipcae.gumbel.DEFAULT_MAX_NOISE_ELEMENTS`, 2**27) bounds
    the per-example selection's working memory: a B x K x D above it is computed in chunks that
    redraw their noise in backward (slower, flat memory). Sizes below it are untouched.

    Sparse batches stay sparse with per-batch noise (x M^T is a sparse-dense product) and in
    evaluation (a column gather); per-example noise reads each batch densely (B x D).
    """

    accepts_sparse = True

    def __init__(
        self,
        num_features: int,
        k: int,
        noise: str = "per_example",
        diversity_weight: float = 0.0,
        max_noise_elements: int | None = None,
    ) -> None:
        super().__init__(num_features, k)
        if noise not in (*NOISE_MODES, "auto"):
            raise ConfigError(
                f"model.selector.noise={noise!r} is unknown: use one of {', '.join((*NOISE_MODES, 'auto'))}"
            )
        if not diversity_weight >= 0:
            raise ConfigError(f"model.selector.diversity_weight={diversity_weight} must be >= 0")
        try:
            budget = _budget(max_noise_elements)
        except ValueError:
            raise ConfigError(
                f"model.selector.max_noise_elements={max_noise_elements!r} must be an integer >= 2 "
                f"or null (the default, {_budget(None):,})"
            ) from None
        self.max_noise_elements = max_noise_elements
        if noise == "auto":
            noise, reason = auto_noise(k, num_features, budget)
            log.info("model.selector.noise=auto chose %s: %s (model.selector.max_noise_elements)", noise, reason)
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
        if is_sparse(x) and self.noise != "per_batch":
            x = x.to_dense()
        return relaxed_select(x, self.logits(), self.temperature, self.noise, self.max_noise_elements)

    def forward_eval(self, x: Tensor) -> Tensor:
        return select_columns(x, self.logits().argmax(dim=-1))

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
    ``embedding_dim`` is P and defaults to D (the reference). Memory: W takes D * P * 4 bytes of
    float32 and Adam keeps two moments of the same size, so about 3 * D * P * 4 bytes in training
    (P = D at D = 10^5: 40 GB for W alone; P = 256: 102 MB). For large D choose P << D (64-512).
    ``embedding_dim=None`` with a D x D map above ``max_map_gib`` GiB is refused with a
    ConfigError suggesting a P, rather than silently changing P.
    """

    def __init__(
        self,
        num_features: int,
        k: int,
        embedding_dim: int | None = None,
        max_map_gib: float = DEFAULT_MAX_MAP_GIB,
        **kwargs,
    ) -> None:
        super().__init__(num_features, k, **kwargs)
        if not (isinstance(max_map_gib, int | float) and max_map_gib > 0):
            raise ConfigError(f"model.selector.max_map_gib={max_map_gib!r} must be a positive number of GiB")
        if embedding_dim is None:
            map_bytes = num_features * num_features * 4
            if map_bytes > max_map_gib * 2**30:
                raise ConfigError(
                    f"model.selector.embedding_dim=null means P = D = {num_features:,}, whose D x P map takes "
                    f"{map_bytes / 2**30:,.1f} GiB of float32 parameters (3x that with Adam's moments), over "
                    f"model.selector.max_map_gib={max_map_gib:g}: set model.selector.embedding_dim="
                    f"{SUGGESTED_EMBEDDING_DIM} ({num_features * SUGGESTED_EMBEDDING_DIM * 4 / 2**20:,.0f} MiB)"
                )
        p = num_features if embedding_dim is None else embedding_dim
        if not isinstance(p, int) or isinstance(p, bool) or p < 1:
            raise ConfigError(f"model.selector.embedding_dim={embedding_dim!r} must be a positive integer or null")
        self.embedding = nn.Parameter(torch.randn(k, p))
        self.projection = nn.Linear(p, num_features)

    def logits(self) -> Tensor:
        return self.projection(self.embedding)
