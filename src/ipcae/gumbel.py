"""Relaxed (Gumbel-softmax) feature selection: x_S[b, i] = sum_d softmax((log_alpha_i + g_bid) / T)_d x[b, d]."""

from __future__ import annotations

import torch
from torch import Tensor

NOISE_MODES = ("per_example", "per_batch")


def sample_gumbel(shape: torch.Size | tuple[int, ...], like: Tensor) -> Tensor:
    """Standard Gumbel noise -log(-log u), u ~ U(0, 1), with the dtype and device of ``like``."""
    u = torch.rand(shape, dtype=like.dtype, device=like.device)
    tiny = torch.finfo(like.dtype).tiny
    return -torch.log(-torch.log(u.clamp_min(tiny)))


def relaxed_select_reference(x: Tensor, log_alpha: Tensor, temperature: Tensor | float, noise: Tensor) -> Tensor:
    """Textbook formula with explicit noise: softmax over features, then a batched product.

    ``x``: B x D, ``log_alpha``: K x D, ``noise``: B x K x D (per example) or K x D (shared).
    """
    weights = torch.softmax((log_alpha + noise) / temperature, dim=-1)
    if weights.dim() == 2:
        return x @ weights.T
    return torch.bmm(weights, x.unsqueeze(-1)).squeeze(-1)


def relaxed_select(x: Tensor, log_alpha: Tensor, temperature: Tensor | float, noise: str = "per_example") -> Tensor:
    """Draw Gumbel noise and return the relaxed selection x_S (B x K)."""
    if noise == "per_example":
        g = sample_gumbel((x.shape[0], *log_alpha.shape), log_alpha)
    elif noise == "per_batch":
        g = sample_gumbel(log_alpha.shape, log_alpha)
    else:
        raise ValueError(f"noise={noise!r}: use one of {', '.join(NOISE_MODES)}")
    return relaxed_select_reference(x, log_alpha, temperature, g)
