"""Stochastic gates (STG; Yamada, Lindenbaum, Negahban and Kluger, ICML 2020).

Written from the paper and the semantics of its reference implementation (runopti/stg):

- one gate per feature, z_d = clamp(mu_d + sigma * eps_d, 0, 1), eps ~ N(0, 1), sigma = 0.5;
- mu starts at 0.5 + 0.01 * N(0, 1) (the reference stores mu - 0.5 and adds 0.5 in its hard
  sigmoid; the gates are the same);
- the penalty is ``l0_weight * mean_d Phi(mu_d / sigma)``, the expected fraction of open gates: a
  mean over features, so one lambda means the same at D = 77 and D = 784;
- evaluation gates are deterministic, clamp(mu, 0, 1).

Noise granularity, which the paper leaves open: the reference draws one eps vector per forward
pass, shared by the batch (``noise="per_batch"``, the default); ``per_example`` draws B x D.

The decoder sees the gated input (all D features); the selection is the K features with the
largest mu, which the framework evaluates with a decoder retrained on those K columns.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ipcae.data.rows import scale_columns
from ipcae.errors import ConfigError
from ipcae.selectors.base import FeatureSelector

NOISE_MODES = ("per_batch", "per_example")


def standard_normal_cdf(x: Tensor) -> Tensor:
    return 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0)))


class STGSelector(FeatureSelector):
    """Gaussian-relaxed Bernoulli gates with an expected-L0 penalty (see the module docstring).

    Sparse batches stay sparse: the gates scale the stored values, the decoder's first layer
    multiplies the sparse result.
    """

    accepts_sparse = True

    def __init__(
        self,
        num_features: int,
        k: int,
        sigma: float = 0.5,
        l0_weight: float = 0.1,
        noise: str = "per_batch",
        mu_init: float = 0.5,
        mu_init_std: float = 0.01,
    ) -> None:
        super().__init__(num_features, k)
        if not (sigma > 0 and l0_weight >= 0 and mu_init_std >= 0):
            raise ConfigError(
                f"STG needs sigma > 0, l0_weight >= 0 and mu_init_std >= 0 "
                f"(got sigma={sigma}, l0_weight={l0_weight}, mu_init_std={mu_init_std})"
            )
        if noise not in NOISE_MODES:
            raise ConfigError(f"model.selector.noise={noise!r} is unknown for STG: use one of {', '.join(NOISE_MODES)}")
        self.sigma, self.l0_weight, self.noise = sigma, l0_weight, noise
        self.mu = nn.Parameter(float(mu_init) + mu_init_std * torch.randn(num_features))

    @property
    def out_features(self) -> int:
        return self.num_features

    def gates(self) -> Tensor:
        """The evaluation gates clamp(mu, 0, 1)."""
        return self.mu.clamp(0.0, 1.0)

    def selected_indices(self) -> Tensor:
        return torch.topk(self.mu, self.k).indices

    def selected_probabilities(self) -> Tensor:
        return self.gates()[self.selected_indices()]

    def regularization(self) -> Tensor:
        return self.l0_weight * standard_normal_cdf(self.mu / self.sigma).mean()

    def forward_train(self, x: Tensor) -> Tensor:
        shape = x.shape if self.noise == "per_example" else self.mu.shape
        eps = torch.randn(shape, dtype=x.dtype, device=x.device)
        return scale_columns(x, (self.mu + self.sigma * eps).clamp(0.0, 1.0))

    def forward_eval(self, x: Tensor) -> Tensor:
        return scale_columns(x, self.gates())

    def diagnostics(self) -> dict[str, Tensor | float]:
        """``open_gates``: % of features whose evaluation gate is open (mu > 0); ``mean_gate``."""
        gates = self.gates()
        return {"open_gates": 100.0 * (gates > 0).float().mean(), "mean_gate": gates.mean()}
