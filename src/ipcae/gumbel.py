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

Memory: the per-example path holds B x K x D elements (5M at MNIST size, 6.4e9 at D = 10^6,
B = 128, K = 50). Above a budget of ``max_elements`` (default :data:`DEFAULT_MAX_NOISE_ELEMENTS`)
the selection is computed in chunks of examples (and of the K rows, when one example alone is
too big) by :class:`_ChunkedPerExampleSelect`, which keeps nothing of size B x K x D for backward:
each chunk's noise comes from its own seed, and the backward pass draws the same noise again and
recomputes the weights. That costs a second pass of random numbers and softmax, so it is used
only above the budget; below it the fast path and its random stream are exactly as before
(committed results reproduce bit for bit).
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


# The largest B x K x D per-example selection computed in one piece (2**27 elements: 512 MB of
# float32), far above the paper's sizes (MNIST 128 x 50 x 784 = 5.0M, Mice Protein 16 x 10 x 77).
# Above it the chunked path keeps its working tensors within this many elements.
DEFAULT_MAX_NOISE_ELEMENTS = 1 << 27


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


# Memory-bounded per-example selection (above the budget).


def max_noise_elements(max_elements: int | None = None) -> int:
    """The element budget in force: ``max_elements``, or the module default when None."""
    budget = DEFAULT_MAX_NOISE_ELEMENTS if max_elements is None else max_elements
    if not isinstance(budget, int) or isinstance(budget, bool) or budget < 2:
        raise ValueError(f"max_elements={max_elements!r} must be an integer >= 2 or None")
    return budget


def chunk_shape(batch: int, k: int, d: int, max_elements: int | None = None) -> tuple[int, int]:
    """(examples, rows) per chunk of the chunked per-example selection.

    A chunk holds at most half the budget, because its backward needs two chunk-sized tensors at
    once (the regenerated weights and one temporary): peak working memory then stays within
    ``max_elements``. Whole examples are grouped while one example's K x D fits; otherwise each
    chunk is a block of the K rows of one example (one row of D at the least, the smallest unit).
    """
    half = max(max_noise_elements(max_elements) // 2, 1)
    if k * d <= half:
        return max(1, min(batch, half // (k * d))), k
    return 1, max(1, min(k, half // d))


def _chunk_bounds(batch: int, k: int, examples: int, rows: int) -> list[tuple[int, int, int, int]]:
    return [
        (b0, min(b0 + examples, batch), k0, min(k0 + rows, k))
        for b0 in range(0, batch, examples)
        for k0 in range(0, k, rows)
    ]


def _seeded_integers(numel: int, bits: int, device: torch.device, key: tuple[int, ...]) -> Tensor:
    """Like :func:`_random_integers`, but a pure function of ``key``: called twice, it gives the
    same integers (how the chunked backward regenerates its forward's noise)."""
    int_dtype = torch.int32 if bits < 32 else torch.int64
    words = (numel + 1) // 2 if int_dtype == torch.int32 else numel
    if device.type == "cpu":
        raw = torch.from_numpy(np.random.SFC64(list(key)).random_raw(words).view(np.int64))
    else:
        seed = int(np.random.SeedSequence(list(key)).generate_state(1, np.uint64)[0]) >> 1
        generator = torch.Generator(device=device)
        generator.manual_seed(seed)
        raw = torch.empty(words, dtype=torch.int64, device=device).random_(generator=generator)
    return raw.view(int_dtype)[:numel].bitwise_and_((1 << bits) - 1)


def chunk_gumbel_noise(
    seed: int, bounds: tuple[int, int, int, int], d: int, dtype: torch.dtype, device: torch.device
) -> Tensor:
    """The Gumbel noise the chunked path draws for examples b0:b1 and rows k0:k1 (``bounds``)
    from the call's ``seed``: a (b1 - b0) x (k1 - k0) x D tensor. For tests and diagnostics."""
    b0, b1, k0, k1 = bounds
    ints = _seeded_integers((b1 - b0) * (k1 - k0) * d, _mantissa_bits(dtype), device, (seed, b0, k0))
    return _log_exponential_(ints, dtype).view(b1 - b0, k1 - k0, d).neg_()


class _ChunkedPerExampleSelect(torch.autograd.Function):
    """The per-example selection in chunks, keeping nothing of size B x K x D for backward.

    ``noise`` is an explicit B x K x D Gumbel tensor (sliced per chunk; not modified), or None:
    then chunk (b0, k0) draws its noise from the seed (``seed``, b0, k0), and the backward draws
    it again. Forward holds one chunk-sized tensor at a time, backward two; what is saved is x,
    log_alpha and the B x K output.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: torch.autograd.function.FunctionCtx,
        x: Tensor,
        log_alpha: Tensor,
        inv_t: Tensor,
        noise: Tensor | None,
        seed: int,
        examples: int,
        rows: int,
    ) -> Tensor:
        batch, (k, _) = x.shape[0], log_alpha.shape
        bounds = _chunk_bounds(batch, k, examples, rows)
        out = torch.empty(batch, k, dtype=log_alpha.dtype, device=log_alpha.device)
        for chunk in bounds:
            b0, b1, k0, k1 = chunk
            weights = _ChunkedPerExampleSelect._weights(log_alpha, inv_t, noise, seed, chunk)
            # The weights are not kept, so the product can be written over them.
            out[b0:b1, k0:k1] = weights.mul_(x[b0:b1].unsqueeze(1)).sum(-1)
            del weights  # before the next chunk's buffer is allocated
        ctx.save_for_backward(x, log_alpha, inv_t, out, *(() if noise is None else (noise,)))
        ctx.seed, ctx.bounds = seed, bounds
        return out

    @staticmethod
    def _weights(
        log_alpha: Tensor, inv_t: Tensor, noise: Tensor | None, seed: int, chunk: tuple[int, int, int, int]
    ) -> Tensor:
        """softmax((log_alpha + g) / T) of one chunk, in one fresh chunk-sized tensor."""
        b0, b1, k0, k1 = chunk
        scaled = log_alpha[k0:k1] * inv_t
        if noise is None:
            shape = (b1 - b0, k1 - k0, log_alpha.shape[1])
            bits = _mantissa_bits(log_alpha.dtype)
            ints = _seeded_integers(math.prod(shape), bits, log_alpha.device, (seed, b0, k0)).view(shape)
            log_e = _log_exponential_(ints, log_alpha.dtype)
            logits = torch.addcmul(scaled, log_e, inv_t, value=-1, out=log_e)
        else:
            logits = torch.addcmul(scaled, noise[b0:b1, k0:k1].to(log_alpha.dtype), inv_t)
        return _softmax_(logits)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad_out: Tensor) -> tuple[Tensor | None, ...]:
        x, log_alpha, inv_t, out, *rest = ctx.saved_tensors
        noise = rest[0] if rest else None
        need_x, need_alpha = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        grad_x = torch.zeros_like(x) if need_x else None
        grad_log_alpha = torch.zeros_like(log_alpha) if need_alpha else None
        for chunk in ctx.bounds:
            b0, b1, k0, k1 = chunk
            weights = _ChunkedPerExampleSelect._weights(log_alpha, inv_t, noise, ctx.seed, chunk)
            g = grad_out[b0:b1, k0:k1]
            if grad_x is not None:
                grad_x[b0:b1] += torch.bmm(g.unsqueeze(1), weights).squeeze(1)
            if grad_log_alpha is not None:
                grad_log_alpha[k0:k1] += _backward_eager(g, weights, x[b0:b1], out[b0:b1, k0:k1], inv_t)
            del weights
        return grad_x, grad_log_alpha, None, None, None, None, None


def _chunked_select(x: Tensor, log_alpha: Tensor, inv_t: Tensor, noise: Tensor | None, max_elements: int) -> Tensor:
    """The chunked per-example selection; dtypes without a fast sampler are computed in float32."""
    dtype = log_alpha.dtype
    work = dtype if dtype in _FAST_DTYPES else torch.float32
    examples, rows = chunk_shape(x.shape[0], *log_alpha.shape, max_elements)
    # One draw from PyTorch's default generator per call, as the fast path's NumPy seed, so that
    # torch.manual_seed makes the chunked path reproducible too.
    seed = int(torch.randint(0, 2**62, (), dtype=torch.int64)) if noise is None else 0
    out = _ChunkedPerExampleSelect.apply(x.to(work), log_alpha.to(work), inv_t.to(work), noise, seed, examples, rows)
    return out.to(dtype)


def auto_noise(k: int, d: int, max_elements: int | None = None) -> tuple[str, str]:
    """What ``noise="auto"`` uses for K rows over D features, and why (one sentence).

    Per-example noise unless one example's K x D draw alone exceeds the budget: then every
    example of every step would cost more than a whole budget of random numbers and softmax, in
    row-sized chunks, and the shared K x D draw of ``per_batch`` is used instead.
    """
    budget = max_noise_elements(max_elements)
    if k * d <= budget:
        return "per_example", (
            f"one example's K x D = {k} x {d} = {k * d:,} Gumbel draws fit the budget of {budget:,} elements; "
            f"batches with B x K x D above it are computed in chunks"
        )
    return "per_batch", (
        f"one example's K x D = {k} x {d} = {k * d:,} Gumbel draws exceed the budget of {budget:,} elements, "
        f"so one K x D draw is shared by the batch"
    )


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
    x: Tensor,
    log_alpha: Tensor,
    temperature: Tensor | float,
    gumbel_noise: Tensor,
    max_elements: int | None = None,
) -> Tensor:
    """The fast path fed with explicit Gumbel noise, B x K x D (per example) or K x D (shared).

    Same value and gradients as :func:`relaxed_select_reference`; ``gumbel_noise`` is not modified.
    Per-example noise of more than ``max_elements`` elements (None: :data:`DEFAULT_MAX_NOISE_ELEMENTS`)
    goes through the chunked path, which then keeps no weights for backward.
    """
    _check(x, log_alpha)
    if gumbel_noise.dim() == 2:
        return relaxed_select_reference(x, log_alpha, temperature, gumbel_noise)
    inv_t = _inverse_temperature(temperature, log_alpha)
    budget = max_noise_elements(max_elements)
    if gumbel_noise.numel() > budget:
        if gumbel_noise.shape != (x.shape[0], *log_alpha.shape):
            raise ValueError(f"relaxed_select: noise of shape {tuple(gumbel_noise.shape)} for x and log_alpha")
        return _chunked_select(x, log_alpha, inv_t, gumbel_noise, budget)
    return _select(x.to(log_alpha.dtype), log_alpha, inv_t, gumbel_noise.to(log_alpha.dtype), False)


def relaxed_select(
    x: Tensor,
    log_alpha: Tensor,
    temperature: Tensor | float,
    noise: str = "per_example",
    max_elements: int | None = None,
) -> Tensor:
    """Draw Gumbel noise and return the relaxed selection x_S (B x K).

    ``per_example``: a fresh K x D draw for every example (the reference). ``per_batch``: one
    K x D draw shared by the batch, so the selection is one matrix product x M^T.

    ``max_elements`` (None: :data:`DEFAULT_MAX_NOISE_ELEMENTS`) bounds the per-example work: up
    to it, nothing differs from before (same random stream, same values); above it the selection
    is computed in chunks that keep peak working memory within ``max_elements`` elements, with
    noise from a different (equally distributed, equally reproducible) stream.
    """
    _check(x, log_alpha)
    if noise == "per_example":
        shape = (x.shape[0], *log_alpha.shape)
        budget = max_noise_elements(max_elements)
        if math.prod(shape) > budget:
            return _chunked_select(x, log_alpha, _inverse_temperature(temperature, log_alpha), None, budget)
        if log_alpha.dtype not in _FAST_DTYPES:
            return relaxed_select_with_noise(x, log_alpha, temperature, sample_gumbel(shape, log_alpha))
        inv_t = _inverse_temperature(temperature, log_alpha)
        ints = _random_integers(math.prod(shape), _mantissa_bits(log_alpha.dtype), log_alpha.device).view(shape)
        return _select(x.to(log_alpha.dtype), log_alpha, inv_t, ints, True)
    if noise == "per_batch":
        return relaxed_select_reference(x, log_alpha, temperature, sample_gumbel(log_alpha.shape, log_alpha))
    raise ValueError(f"noise={noise!r}: use one of {', '.join(NOISE_MODES)}")


__all__: list[str] = [
    "DEFAULT_MAX_NOISE_ELEMENTS",
    "NOISE_MODES",
    "auto_noise",
    "chunk_gumbel_noise",
    "chunk_shape",
    "max_noise_elements",
    "relaxed_select",
    "relaxed_select_reference",
    "relaxed_select_with_noise",
    "sample_gumbel",
    "set_compiled",
]
