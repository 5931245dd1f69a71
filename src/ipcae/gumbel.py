"""Relaxed (Gumbel-softmax) feature selection: x_S[b, i] = sum_d softmax((log_alpha_i + g_bid) / T)_d x[b, d].

Two implementations of the same formula:

- :func:`relaxed_select_reference` is the textbook one (softmax, then a batched product) and is
  what the fast path is tested against (tests/test_gumbel.py).
- :func:`relaxed_select` / :func:`relaxed_select_with_noise` are the fast path. With per-example
  noise the B x K x D tensor is the whole cost of the step (5M elements at MNIST size), so the
  work is counted in passes over it: one buffer holds, in turn, the random bits, log E, the
  logits and the softmax weights M, all in place, and M is the only large tensor kept for
  backward. The backward is written by hand:
  d out[b,i] / d log_alpha[i,d] = M[b,i,d] (x[b,d] - out[b,i]) / T.

Random numbers: on CPU, PyTorch's Mersenne Twister fills floats one at a time on one core and
was about a third of the textbook step; NumPy's SFC64 gives the same bits about three times
faster. Its seed is drawn from PyTorch's default generator, so ``torch.manual_seed`` (and
Lightning's ``seed_everything``) still make runs reproducible. Small draws, and other devices,
use PyTorch's generator.

benchmarks/bench_selection.py times both; ``set_compiled`` switches on optional torch.compile'd
kernels.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

NOISE_MODES = ("per_example", "per_batch")

# Below this many noise elements the fixed cost of seeding a NumPy generator (tens of
# microseconds) is more than what it saves; PyTorch's generator is used instead.
_NUMPY_RNG_MIN_NUMEL = 1 << 14

_FAST_DTYPES = (torch.float32, torch.float64)

# Below this many B x K x D elements the hand-written autograd.Function loses to PyTorch's own
# autograd on the same in-place noise: its Python forward and backward (tens of microseconds)
# are more than what it saves (measured on one CPU thread: Mice Protein, 16 x 10 x 77, 0.225
# against 0.255 ms; crossover between 1e5 and 2.4e5 elements). Both keep one B x K x D tensor
# for backward.
_FUNCTION_MIN_NUMEL = 1 << 17


# Explicit mantissa bits: eps = 2**-n.
_MANTISSA_BITS = {torch.float32: 23, torch.float64: 52}


def _mantissa_bits(dtype: torch.dtype) -> int:
    return _MANTISSA_BITS[dtype]


_CONSTANTS: dict[tuple[torch.dtype, torch.device], Tensor] = {}


def _uniform_offset(dtype: torch.dtype, device: torch.device) -> Tensor:
    """2**-(n+1) - 1 as a 0-dim tensor, made once per dtype and device (the per-step cost of
    torch.tensor shows at small sizes)."""
    key = (dtype, device)
    if key not in _CONSTANTS:
        _CONSTANTS[key] = torch.tensor(2.0 ** -(_MANTISSA_BITS[dtype] + 1) - 1.0, dtype=dtype, device=device)
    return _CONSTANTS[key]


def _random_integers(numel: int, bits: int, device: torch.device) -> Tensor:
    """``numel`` independent integers uniform on [0, 2**bits), bits <= 62, as an integer tensor.

    The element size is that of the float type the caller converts to (int32 for float32,
    int64 for float64), so that the conversion can be done in place. Both sources fill 64-bit
    words (two int32 values each) and the low ``bits`` bits of each value are kept: with
    SFC64 every bit is uniform; with ``random_()`` the words are uniform on [0, 2**63), so
    every bit but the top one is.
    """
    int_dtype = torch.int32 if bits < 32 else torch.int64
    words = (numel + 1) // 2 if int_dtype == torch.int32 else numel
    if device.type == "cpu" and numel >= _NUMPY_RNG_MIN_NUMEL:
        seed = int(torch.randint(0, 2**62, (), dtype=torch.int64))
        raw = torch.from_numpy(np.random.SFC64(seed).random_raw(words).view(np.int64))
    else:
        raw = torch.empty(words, dtype=torch.int64, device=device).random_()
    return raw.view(int_dtype)[:numel].bitwise_and_((1 << bits) - 1)


def _log_exponential_(ints: Tensor, dtype: torch.dtype) -> Tensor:
    """Turn n-bit random integers (n = the mantissa width of ``dtype``) into log E, E ~ Exp(1).

    In place: the result is the integer tensor's storage viewed as ``dtype``. log E is minus a
    standard Gumbel sample: E = -log u is Exp(1) and P(-log E <= t) = P(E >= e^-t) = exp(-e^-t).
    u is uniform on the 2**n midpoints (k + 1/2) 2**-n (23 bits for float32: half as fine a grid
    as ``torch.rand``'s, in exchange for being symmetric and exact): 0 and 1 never occur, so
    nothing needs clamping, and u - 1 is exact too.
    """
    buf = ints.view(dtype).copy_(ints)
    # w = u - 1 = k 2**-n + (2**-(n+1) - 1), exact; log1p(w) = log u is accurate at both ends
    # (E = -log u near 0 is the upper tail of the Gumbel) and cheaper than log on CPU.
    torch.add(_uniform_offset(dtype, ints.device), buf, alpha=2.0 ** -_MANTISSA_BITS[dtype], out=buf)
    return buf.log1p_().neg_().log_()


def _log_exponential(shape: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> Tensor:
    """log E, E ~ Exp(1) (minus a standard Gumbel sample), in a fresh contiguous tensor."""
    if dtype not in _FAST_DTYPES:
        return _log_exponential(shape, torch.float32, device).to(dtype)
    ints = _random_integers(math.prod(shape), _mantissa_bits(dtype), device)
    return _log_exponential_(ints, dtype).view(shape)


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
    return torch.softmax(t, -1, out=t)


def _rowwise_dot(weights: Tensor, x: Tensor) -> Tensor:
    """out[b, i] = sum_d weights[b, i, d] x[b, d].

    A product and a sum: on CPU about 3 times faster than torch.bmm with a B x D x 1
    right-hand side, which does not reach an efficient kernel. (Cache-sized slices were
    measured too: a little faster on an idle machine, much slower on a busy one, where every
    extra parallel region can wait a scheduler time slice for its second thread.)
    """
    return (weights * x.unsqueeze(1)).sum(-1)


def _backward_eager(grad_out: Tensor, weights: Tensor, x: Tensor, out: Tensor, inv_t: Tensor) -> Tensor:
    """d loss / d log_alpha[i, d] = sum_b g[b,i] M[b,i,d] (x[b,d] - out[b,i]) / T.

    One B x K x D temporary (not kept); the saved weights are not modified, so retain_graph
    and gradcheck work.
    """
    factor = x.unsqueeze(1) - out.unsqueeze(-1)
    return factor.mul_(weights).mul_((grad_out * inv_t).unsqueeze(-1)).sum(0)


# Optional torch.compile'd kernels (see set_compiled): one fused loop per row instead of a
# dozen passes over the B x K x D buffer.


def _forward_from_bits(ints: Tensor, log_alpha: Tensor, inv_t: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
    n = _mantissa_bits(log_alpha.dtype)
    w = ints.to(log_alpha.dtype) * 2.0**-n + (2.0 ** -(n + 1) - 1.0)
    weights = torch.softmax((log_alpha - torch.log(-torch.log1p(w))) * inv_t, dim=-1)
    return (weights * x.unsqueeze(1)).sum(-1), weights


def _forward_from_noise(noise: Tensor, log_alpha: Tensor, inv_t: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
    weights = torch.softmax((log_alpha + noise) * inv_t, dim=-1)
    return (weights * x.unsqueeze(1)).sum(-1), weights


def _backward_fused(grad_out: Tensor, weights: Tensor, x: Tensor, out: Tensor, inv_t: Tensor) -> Tensor:
    return ((x.unsqueeze(1) - out.unsqueeze(-1)) * weights * grad_out.unsqueeze(-1)).sum(0) * inv_t


_COMPILED: dict[str, Callable] = {}
_USE_COMPILED = os.environ.get("IPCAE_COMPILE_SELECTION", "0") not in ("", "0", "false", "False")


def set_compiled(enabled: bool) -> None:
    """Use torch.compile'd kernels for the per-example selection (default: off; the environment
    variable ``IPCAE_COMPILE_SELECTION=1`` switches them on at import).

    They fuse the dozen passes of the eager path into a few loops. On the 2-core CPU this was
    measured on, that made the step only about 1.2 times faster than the eager fast path with
    one thread (the eager path is already bound by the random numbers and the three
    transcendental functions per element), for a compilation of several seconds per process and
    batch size that needs a C++ compiler; see benchmarks/bench_selection.py --compiled.
    """
    global _USE_COMPILED
    _USE_COMPILED = bool(enabled)


def _compiled(fn: Callable) -> Callable:
    if fn.__name__ not in _COMPILED:
        _COMPILED[fn.__name__] = torch.compile(fn, fullgraph=True, dynamic=False)
    return _COMPILED[fn.__name__]


class _PerExampleSelect(torch.autograd.Function):
    """out[b, i] = sum_d M[b,i,d] x[b,d] with M[b,i] = softmax((log_alpha[i] + g[b,i]) / T).

    ``noise`` is either the Gumbel noise g (``from_bits=False``; not modified) or the random
    integers it is made from (``from_bits=True``), whose buffer is then reused for the logits
    and the weights M: M is the only B x K x D tensor kept for backward.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: torch.autograd.function.FunctionCtx,
        x: Tensor,
        log_alpha: Tensor,
        inv_t: Tensor,
        noise: Tensor,
        from_bits: bool,
    ) -> Tensor:
        ctx.compiled = _USE_COMPILED
        if ctx.compiled:
            fn = _forward_from_bits if from_bits else _forward_from_noise
            out, weights = _compiled(fn)(noise, log_alpha, inv_t, x)
        else:
            scaled = log_alpha * inv_t
            if from_bits:
                # logits = (log_alpha - log E) / T, written over the noise buffer.
                log_e = _log_exponential_(noise, log_alpha.dtype)
                logits = torch.addcmul(scaled, log_e, inv_t, value=-1, out=log_e)
            else:
                logits = torch.addcmul(scaled, noise, inv_t)
            weights = _softmax_(logits)
            out = _rowwise_dot(weights, x)
        ctx.save_for_backward(weights, x, out, inv_t)
        return out

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad_out: Tensor) -> tuple[Tensor | None, ...]:
        weights, x, out, inv_t = ctx.saved_tensors
        grad_x = grad_log_alpha = None
        if ctx.needs_input_grad[0]:
            grad_x = torch.bmm(grad_out.unsqueeze(1), weights).squeeze(1)
        if ctx.needs_input_grad[1]:
            if ctx.compiled:
                grad_log_alpha = _compiled(_backward_fused)(grad_out, weights, x, out, inv_t)
            else:
                grad_log_alpha = _backward_eager(grad_out, weights, x, out, inv_t)
        return grad_x, grad_log_alpha, None, None, None


def _select(x: Tensor, log_alpha: Tensor, inv_t: Tensor, noise: Tensor, from_bits: bool) -> Tensor:
    """The per-example selection from noise or random bits (see _PerExampleSelect)."""
    if _USE_COMPILED or noise.numel() >= _FUNCTION_MIN_NUMEL:
        return _PerExampleSelect.apply(x, log_alpha, inv_t, noise, from_bits)
    # Small sizes: the same in-place noise and logits, differentiated by autograd. It keeps the
    # softmax output (one B x K x D tensor) and x, as the Function does.
    if from_bits:
        logits = torch.addcmul(log_alpha * inv_t, _log_exponential_(noise, log_alpha.dtype), inv_t, value=-1)
    else:
        logits = torch.addcmul(log_alpha * inv_t, noise, inv_t)
    return _rowwise_dot(torch.softmax(logits, dim=-1), x)


def _inverse_temperature(temperature: Tensor | float, like: Tensor) -> Tensor:
    """1/T as a 0-dim tensor of ``like``'s dtype and device (no .item(): on a GPU that would
    wait for the device at every step)."""
    if not isinstance(temperature, Tensor):
        return torch.tensor(1.0 / temperature, dtype=like.dtype, device=like.device)
    if temperature.requires_grad:
        raise NotImplementedError("relaxed_select: no gradient with respect to the temperature")
    if temperature.numel() != 1:
        raise ValueError(f"relaxed_select: the temperature must be a scalar, got shape {tuple(temperature.shape)}")
    return torch.reciprocal(temperature.reshape(()).to(dtype=like.dtype, device=like.device))


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
    return _select(x.to(log_alpha.dtype), log_alpha, inv_t, gumbel_noise.to(log_alpha.dtype), False)


def relaxed_select(x: Tensor, log_alpha: Tensor, temperature: Tensor | float, noise: str = "per_example") -> Tensor:
    """Draw Gumbel noise and return the relaxed selection x_S (B x K).

    ``per_example``: a fresh K x D draw for every example (the reference). ``per_batch``: one
    K x D draw shared by the batch, so the selection is one matrix product x M^T.
    """
    _check(x, log_alpha)
    if noise == "per_example":
        shape = (x.shape[0], *log_alpha.shape)
        if log_alpha.dtype not in _FAST_DTYPES:
            return relaxed_select_with_noise(x, log_alpha, temperature, sample_gumbel(shape, log_alpha))
        inv_t = _inverse_temperature(temperature, log_alpha)
        ints = _random_integers(math.prod(shape), _mantissa_bits(log_alpha.dtype), log_alpha.device).view(shape)
        return _select(x.to(log_alpha.dtype), log_alpha, inv_t, ints, True)
    if noise == "per_batch":
        return relaxed_select_reference(x, log_alpha, temperature, sample_gumbel(log_alpha.shape, log_alpha))
    raise ValueError(f"noise={noise!r}: use one of {', '.join(NOISE_MODES)}")


__all__: list[str] = [
    "NOISE_MODES",
    "relaxed_select",
    "relaxed_select_reference",
    "relaxed_select_with_noise",
    "sample_gumbel",
    "set_compiled",
]
