"""Relaxed (Gumbel-softmax) feature selection: x_S[b, i] = sum_d softmax((log_alpha_i + g_bid) / T)_d x[b, d].

Two implementations of the same formula:

- :func:`relaxed_select_reference` is the textbook one (softmax, then a batched product) and is
  what the fast path is tested against.
- :func:`relaxed_select` / :func:`relaxed_select_with_noise` are the fast path. With per-example
  noise the B x K x D tensor is the whole cost of the step (5M elements at MNIST size), so it
  is written for memory traffic: one B x K x D buffer holds, in turn, the random bits, the
  Gumbel noise, the logits and the softmax weights M, and is the only large tensor saved for
  backward; the backward is written by hand
  (d out[b,i] / d log_alpha[i,d] = M[b,i,d] (x[b,d] - out[b,i]) / T).

Random numbers: on CPU, PyTorch's Mersenne Twister fills floats one at a time on one core
(about half of the textbook step); NumPy's SFC64 gives the same number of bits about three times
faster. Its seed is drawn from PyTorch's default generator, so ``torch.manual_seed`` (and
Lightning's ``seed_everything``) still make runs reproducible. On other devices PyTorch's own
generator of that device is used.
"""

from __future__ import annotations

import math
import numpy as np
import torch
from torch import Tensor

NOISE_MODES = ("per_example", "per_batch")

# Below this many noise elements the fixed cost of seeding a NumPy generator (tens of
# microseconds) is more than what it saves; PyTorch's generator is used instead.
_NUMPY_RNG_MIN_NUMEL = 1 << 16

# Size of the backward's temporary: a few rows of K at a time, small enough for the cache.
_BACKWARD_CHUNK_BYTES = 2 << 20


def _mantissa_bits(dtype: torch.dtype) -> int:
    # eps = 2**-n for a float type with n explicit mantissa bits (23 for float32, 52 for float64).
    return round(-math.log2(torch.finfo(dtype).eps))


def _random_integers(numel: int, bits: int, device: torch.device) -> Tensor:
    """``numel`` independent integers uniform on [0, 2**bits), as an integer tensor.

    The tensor's element size is that of the float type the caller will convert it to
    (int32 for float32, int64 for float64), so the conversion can be done in place.
    """
    int_dtype = torch.int32 if bits < 32 else torch.int64
    if device.type == "cpu" and numel >= _NUMPY_RNG_MIN_NUMEL:
        seed = int(torch.randint(0, 2**62, (), dtype=torch.int64))
        per_word = 64 // torch.iinfo(int_dtype).bits
        raw = np.random.SFC64(seed).random_raw((numel + per_word - 1) // per_word)
        ints = torch.from_numpy(raw.view(np.int64)).view(int_dtype)[:numel]
        # Every bit of SFC64's output is uniform, so keeping the low ``bits`` bits is exact.
        return ints.bitwise_and_((1 << bits) - 1)
    return torch.randint(0, 1 << bits, (numel,), dtype=int_dtype, device=device)


def _log_exponential(shape: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> Tensor:
    """log E with E ~ Exp(1), i.e. minus a standard Gumbel sample, in a fresh contiguous tensor.

    u is uniform on the midpoints (k + 1/2) 2**-n, k = 0 .. 2**n - 1, n = the mantissa width:
    every value is exact in ``dtype``, 0 and 1 never occur (so no clamping), and the grid is
    as fine as ``torch.rand``'s. E = -log u is Exp(1) and -log E is Gumbel(0, 1), since
    P(-log E <= t) = P(E >= e^-t) = exp(-e^-t).
    """
    if dtype not in (torch.float32, torch.float64):
        return _log_exponential(shape, torch.float32, device).to(dtype)
    numel = math.prod(shape)
    n = _mantissa_bits(dtype)
    ints = _random_integers(numel, n, device)
    buf = ints.view(dtype)  # same storage, same element size: converted in place below
    half_step = torch.tensor(2.0 ** -(n + 1), dtype=dtype, device=device)
    torch.add(half_step, ints, alpha=2.0**-n, out=buf)  # u = (k + 1/2) 2**-n, exact
    buf.log_().neg_().log_()  # log(-log u): log u is computed from the exact u, so E stays accurate near 0
    return buf.view(shape)


def sample_gumbel(shape: torch.Size | tuple[int, ...], like: Tensor) -> Tensor:
    """Standard Gumbel noise, -log(E) with E ~ Exp(1), with the dtype and device of ``like``."""
    return _log_exponential(tuple(shape), like.dtype, like.device).neg_()


def relaxed_select_reference(x: Tensor, log_alpha: Tensor, temperature: Tensor | float, noise: Tensor) -> Tensor:
    """Textbook formula with explicit noise: softmax over features, then a batched product.

    ``x``: B x D, ``log_alpha``: K x D, ``noise``: B x K x D (per example) or K x D (shared).
    """
    weights = torch.softmax((log_alpha + noise) / temperature, dim=-1)
    if weights.dim() == 2:
        return x @ weights.T
    return torch.bmm(weights, x.unsqueeze(-1)).squeeze(-1)


def _softmax_(t: Tensor) -> Tensor:
    """Softmax over the last dimension, written over ``t``.

    The fused kernel reads each row before it writes it, so input and output may alias; this
    saves a B x K x D allocation per step.
    """
    return torch.ops.aten._softmax.out(t, -1, False, out=t)


class _PerExampleSelect(torch.autograd.Function):
    """out[b, i] = sum_d M[b,i,d] x[b,d], M[b,i] = softmax(log_alpha[i] * s + noise[b,i] * s * sign).

    ``s`` = 1/T. ``noise`` is either the Gumbel noise (sign +1) or minus it (sign -1, what the
    sampler produces). With ``owned`` the noise buffer is overwritten and becomes M, the only
    B x K x D tensor kept for backward.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: torch.autograd.function.FunctionCtx,
        x: Tensor,
        log_alpha: Tensor,
        inv_t: Tensor,
        noise: Tensor,
        sign: float,
        owned: bool,
    ) -> Tensor:
        scaled = log_alpha * inv_t
        noise_scale = inv_t * sign
        if owned:
            logits = torch.addcmul(scaled, noise, noise_scale, out=noise)
        else:
            logits = torch.addcmul(scaled, noise, noise_scale)
        weights = _softmax_(logits)
        out = torch.bmm(weights, x.unsqueeze(-1)).squeeze(-1)
        ctx.save_for_backward(weights, x, out, inv_t)
        return out

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad_out: Tensor) -> tuple[Tensor | None, ...]:
        weights, x, out, inv_t = ctx.saved_tensors
        grad_x = grad_log_alpha = None
        if ctx.needs_input_grad[0]:
            grad_x = torch.bmm(grad_out.unsqueeze(1), weights).squeeze(1)
        if ctx.needs_input_grad[1]:
            grad_log_alpha = torch.empty_like(weights[0])
            # sum_b g[b,i] M[b,i,d] (x[b,d] - out[b,i]) / T. The elementwise factor needs a
            # temporary; a few rows of K at a time keep it small enough to stay in cache (and
            # the saved weights intact, so retain_graph and gradcheck work).
            b, k, d = weights.shape
            rows = max(1, _BACKWARD_CHUNK_BYTES // (b * d * weights.element_size()))
            for start in range(0, k, rows):
                stop = min(start + rows, k)
                factor = x.unsqueeze(1) - out[:, start:stop, None]
                factor.mul_(weights[:, start:stop])
                # rows batches of (1 x B) @ (B x D): the reduction over the batch is a product.
                torch.bmm(
                    grad_out[:, start:stop].T.unsqueeze(1),
                    factor.transpose(0, 1),
                    out=grad_log_alpha[start:stop].unsqueeze(1),
                )
            grad_log_alpha.mul_(inv_t)
        return grad_x, grad_log_alpha, None, None, None, None


def _inverse_temperature(temperature: Tensor | float, like: Tensor) -> Tensor:
    if isinstance(temperature, Tensor):
        if temperature.requires_grad:
            raise NotImplementedError("relaxed_select: no gradient with respect to the temperature")
        if temperature.numel() != 1:
            raise ValueError(f"relaxed_select: the temperature must be a scalar, got shape {tuple(temperature.shape)}")
        # No .item(): on a GPU that would wait for the device at every step.
        return temperature.detach().reshape(()).to(dtype=like.dtype, device=like.device).reciprocal()
    return torch.tensor(1.0 / temperature, dtype=like.dtype, device=like.device)


def _check(x: Tensor, log_alpha: Tensor) -> None:
    if x.dim() != 2 or log_alpha.dim() != 2 or x.shape[1] != log_alpha.shape[1]:
        raise ValueError(
            f"relaxed_select: x must be B x D and log_alpha K x D, got {tuple(x.shape)} and {tuple(log_alpha.shape)}"
        )


def relaxed_select_with_noise(
    x: Tensor, log_alpha: Tensor, temperature: Tensor | float, gumbel_noise: Tensor
) -> Tensor:
    """The fast path fed with explicit Gumbel noise, B x K x D (per example) or K x D (shared).

    Same value and gradients as :func:`relaxed_select_reference`; ``gumbel_noise`` is not modified.
    """
    _check(x, log_alpha)
    if gumbel_noise.dim() == 2:
        return relaxed_select_reference(x, log_alpha, temperature, gumbel_noise)
    inv_t = _inverse_temperature(temperature, log_alpha)
    x = x.to(log_alpha.dtype)
    return _PerExampleSelect.apply(x, log_alpha, inv_t, gumbel_noise.to(log_alpha.dtype), 1.0, False)


def relaxed_select(x: Tensor, log_alpha: Tensor, temperature: Tensor | float, noise: str = "per_example") -> Tensor:
    """Draw Gumbel noise and return the relaxed selection x_S (B x K).

    ``per_example``: a fresh K x D draw for every example (the reference). ``per_batch``: one
    K x D draw shared by the batch, so the selection is one matrix product x M^T.
    """
    _check(x, log_alpha)
    if noise == "per_example":
        inv_t = _inverse_temperature(temperature, log_alpha)
        neg_gumbel = _log_exponential((x.shape[0], *log_alpha.shape), log_alpha.dtype, log_alpha.device)
        return _PerExampleSelect.apply(x.to(log_alpha.dtype), log_alpha, inv_t, neg_gumbel, -1.0, True)
    if noise == "per_batch":
        return relaxed_select_reference(x, log_alpha, temperature, sample_gumbel(log_alpha.shape, log_alpha))
    raise ValueError(f"noise={noise!r}: use one of {', '.join(NOISE_MODES)}")


__all__: list[str] = [
    "NOISE_MODES",
    "relaxed_select",
    "relaxed_select_reference",
    "relaxed_select_with_noise",
    "sample_gumbel",
]
