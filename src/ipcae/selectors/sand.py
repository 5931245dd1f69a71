"""SAND: selection with additive noise distortion (Pad, Hammoud, Dia, Maamari and Dunbar, ICML 2025).

"SAND: One-Shot Feature Selection with Additive Noise Distortion": one gain a_d per feature and

    x~_d = a_d x_d + (1 - a_d) z_d,    z_d ~ N(0, sigma^2) i.i.d. per entry,

with the gains renormalised so that ||a||_alpha^alpha = sum_d a_d^alpha = K. Noise drowns a feature
unless its gain is near 1, and the fixed budget K lets only about K gains get there, so the gains
polarise to K ones and D - K zeros without any change to the loss. After training the K largest
gains are kept and the others set to 0; the network is used as trained (no retraining).

Semantics taken from the paper and its reference implementation (HadiHammoud44/SAND), with the
choices the paper leaves open:

- Parameterisation: a free vector w, initialised to sqrt(K / D) everywhere (every gain equal, the
  budget met). The gains are a = c * (K / sum_d c_d^alpha)^(1 / alpha) with c = min(|w|, 1): the
  absolute value makes the sign irrelevant and the clip at 1 keeps one feature from taking the
  whole budget.
- The reference overwrites w with the normalised gains at every training step, so w itself stays
  on the constraint set and Adam's step size is relative to gains of order 1 (a projection after
  each step). Here the projection is done at the start of each training forward pass, in place
  and without gradient, before the gains are computed from w; evaluation does not modify w.
- alpha (``norm``) = 2 as in the paper and the reference; sigma = 1.5 is the reference's value
  for all six benchmark datasets (the paper studies how sigma changes how fast the gains polarise).
- Noise per entry (B x D), as the paper defines it. At evaluation there is no noise.
- Evaluation and the selection: the K largest gains; the others are set to 0. As in the
  reference's evaluation (where the layer renormalises whatever w holds) the K kept gains are then
  renormalised to meet the budget again, so the decoder sees x_d * a'_d on the K selected features
  and 0 elsewhere; after polarisation a' is a ~ 1. The reference ranks features by the gain times
  the norm of the decoder's first-layer weights of that input; this selector has no access to the
  decoder and ranks by the gain alone, which is what the paper describes.
- The decoder is D wide (the noisy input, all features). The joint decoder's test metrics are
  SAND's own one-shot protocol and use exactly the K selected features; the framework adds the
  retrained-decoder numbers as for any selector whose ``out_features`` is not K.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ipcae.errors import ConfigError
from ipcae.selectors.base import FeatureSelector


def normalised_gains(w: Tensor, k: int, norm: float = 2.0) -> Tensor:
    """a = c (K / sum c^alpha)^(1/alpha), c = min(|w|, 1): sum_d a_d^alpha = K."""
    c = w.abs().clamp(max=1.0)
    return c * (k / c.pow(norm).sum()).pow(1.0 / norm)


class SANDSelector(FeatureSelector):
    """Gains with a fixed alpha-norm budget K and additive Gaussian noise (see the module docstring)."""

    def __init__(self, num_features: int, k: int, sigma: float = 1.5, norm: float = 2.0) -> None:
        super().__init__(num_features, k)
        if not sigma >= 0:
            raise ConfigError(f"model.selector.sigma={sigma} must be >= 0 (the noise standard deviation)")
        if not norm > 0:
            raise ConfigError(f"model.selector.norm={norm} must be > 0 (alpha of the gain budget)")
        self.sigma, self.norm = float(sigma), float(norm)
        self.w = nn.Parameter(torch.full((num_features,), math.sqrt(k / num_features)))

    @property
    def out_features(self) -> int:
        return self.num_features

    def gains(self) -> Tensor:
        """The training gains a (D values, sum a^alpha = K)."""
        return normalised_gains(self.w, self.k, self.norm)

    def selected_indices(self) -> Tensor:
        """The K largest gains, in decreasing order (ranked on |w| itself, not on the clipped
        value, so that gains clipped at 1 are not tied)."""
        return self.w.abs().topk(self.k).indices

    def selected_gains(self) -> Tensor:
        """The evaluation gains: the K largest kept and renormalised to the budget, the others 0."""
        mask = torch.zeros_like(self.w).scatter_(0, self.selected_indices(), 1.0)
        return normalised_gains(self.w * mask, self.k, self.norm)

    def selected_probabilities(self) -> Tensor:
        return self.gains()[self.selected_indices()].clamp(0.0, 1.0)

    def forward_train(self, x: Tensor) -> Tensor:
        with torch.no_grad():
            self.w.copy_(self.gains())
        a = self.gains()
        if self.sigma == 0:
            return x * a
        z = torch.randn_like(x) * self.sigma
        return a * x + (1.0 - a) * z

    def forward_eval(self, x: Tensor) -> Tensor:
        return x * self.selected_gains().to(x.dtype)

    def diagnostics(self) -> dict[str, Tensor | float]:
        """``topk_share``: the K largest gains' share of the budget, sum a^alpha / K over them (1 once
        polarised); ``open_gains``: how many gains exceed 0.5."""
        a = self.gains()
        top = a[self.selected_indices()]
        return {"topk_share": top.pow(self.norm).sum() / self.k, "open_gains": (a > 0.5).sum().float()}
