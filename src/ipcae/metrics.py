"""Selection diagnostics with values the method fixes: Unique Percentage and GJSD."""

from __future__ import annotations

import torch
from torch import Tensor


def unique_percentage(indices: Tensor) -> Tensor:
    """100 * (number of distinct selected features) / K, for K selected indices."""
    return 100.0 * torch.unique(indices).numel() / indices.numel()


def entropy(probs: Tensor, dim: int = -1) -> Tensor:
    """Shannon entropy in nats; 0 * log 0 counts as 0, and so does its gradient.

    ``xlogy(p, p)`` alone has the value 0 at p = 0 but the gradient 0 / 0 = NaN there, and a softmax
    whose logits spread by more than about 100 (IP-CAE's rows do within a few epochs) has exact zeros.
    Where p > 0 the value and the gradient are those of ``xlogy(p, p)``, bit for bit.
    """
    return -torch.special.xlogy(probs, torch.where(probs > 0, probs, torch.ones_like(probs))).sum(dim)


def gjsd(probs: Tensor) -> Tensor:
    """Generalised Jensen-Shannon divergence of the K rows of ``probs`` with equal weights.

    D_GJS = H(mean_i p_i) - mean_i H(p_i), between 0 (all rows equal) and log K (disjoint rows).
    """
    return entropy(probs.mean(0)) - entropy(probs).mean()


def mean_max_probability(probs: Tensor) -> Tensor:
    """Mean over rows of max_d p_id: 1 when every row has converged to a single feature."""
    return probs.max(-1).values.mean()
