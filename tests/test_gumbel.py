"""The fast Gumbel-softmax selection against the textbook formula, fed the same noise.

The textbook formula is softmax((log_alpha + g) / T) followed by a batched product; the fast
path (a hand-written backward, in-place buffers, its own noise sampler) must give the same
values and the same gradients, and the sampler must draw standard Gumbel noise.
"""

from __future__ import annotations

import math

import pytest
import torch

from ipcae import gumbel
from ipcae.gumbel import (
    NOISE_MODES,
    relaxed_select,
    relaxed_select_reference,
    relaxed_select_with_noise,
    sample_gumbel,
)
from ipcae.selectors import DirectSelector, IndirectSelector

TEMPERATURES = [0.01, 0.1, 1.0, 10.0]
EULER_GAMMA = 0.5772156649015329


@pytest.fixture(params=["function", "autograd"])
def path(request, monkeypatch) -> str:
    """Run a test through both per-example implementations: the hand-written autograd.Function
    (used from 2**17 elements up) and PyTorch's autograd on the same in-place noise (below)."""
    monkeypatch.setattr(gumbel, "_FUNCTION_MIN_NUMEL", 0 if request.param == "function" else 1 << 62)
    return request.param


def _tolerances(dtype: torch.dtype, temperature: float) -> dict[str, float]:
    # The fast path multiplies by 1/T where the textbook divides by T: one rounding of a logit
    # of size |log_alpha + g| / T, which is up to ~1e3 at T = 0.01, so float32 agrees to a
    # relative 1e-5 or so there. float64 agrees to rounding.
    if dtype == torch.float64:
        return {"rtol": 1e-10, "atol": 1e-10}
    return {"rtol": 2e-4, "atol": 2e-5 if temperature >= 0.1 else 2e-4}


def _problem(b: int, k: int, d: int, dtype: torch.dtype, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(b, d, generator=gen, dtype=dtype)
    log_alpha = torch.randn(k, d, generator=gen, dtype=dtype) * 2
    return x, log_alpha


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("temperature", TEMPERATURES)
@pytest.mark.parametrize("shape", [(16, 10, 77), (7, 5, 617), (3, 50, 1024), (4, 6, 561), (2, 3, 5000)])
def test_fast_path_matches_textbook_per_example(path: str, dtype, temperature: float, shape) -> None:
    b, k, d = shape
    x, log_alpha = _problem(b, k, d, dtype)
    noise = sample_gumbel((b, k, d), log_alpha)
    noise_before = noise.clone()
    weight = torch.randn(b, k, dtype=dtype, generator=torch.Generator().manual_seed(1))
    t = torch.tensor(temperature)  # a float32 buffer, as in the selectors

    la_fast = log_alpha.clone().requires_grad_()
    out_fast = relaxed_select_with_noise(x, la_fast, t, noise)
    (out_fast * weight).sum().backward()

    la_ref = log_alpha.clone().requires_grad_()
    out_ref = relaxed_select_reference(x, la_ref, t.to(dtype), noise)
    (out_ref * weight).sum().backward()

    tol = _tolerances(dtype, temperature)
    assert out_fast.shape == (b, k) and out_fast.dtype == dtype
    torch.testing.assert_close(out_fast, out_ref, **tol)
    torch.testing.assert_close(la_fast.grad, la_ref.grad, **tol)
    assert torch.equal(noise, noise_before), "the explicit noise must not be modified"


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("temperature", [0.01, 1.0, 10.0])
def test_fast_path_matches_textbook_through_an_indirect_selector(path: str, dtype, temperature: float) -> None:
    # log_alpha = Psi W^T + b: the gradient reaches the embedding and the Linear through the
    # hand-written backward.
    torch.manual_seed(0)
    b, k, d, p = 12, 6, 40, 9
    ref = IndirectSelector(num_features=d, k=k, embedding_dim=p).to(dtype)
    fast = IndirectSelector(num_features=d, k=k, embedding_dim=p).to(dtype)
    fast.load_state_dict(ref.state_dict())
    x = torch.randn(b, d, dtype=dtype)
    noise = sample_gumbel((b, k, d), x)
    t = torch.tensor(temperature, dtype=dtype)
    weight = torch.randn(b, k, dtype=dtype)

    (relaxed_select_reference(x, ref.logits(), t, noise) * weight).sum().backward()
    (relaxed_select_with_noise(x, fast.logits(), t, noise) * weight).sum().backward()

    tol = _tolerances(dtype, temperature)
    for name, p_ref in ref.named_parameters():
        p_fast = dict(fast.named_parameters())[name]
        assert p_fast.grad is not None, name
        torch.testing.assert_close(p_fast.grad, p_ref.grad, **tol, msg=name)


@pytest.mark.parametrize("temperature", [0.01, 1.0, 10.0])
def test_gradcheck_float64(path: str, temperature: float) -> None:
    x, log_alpha = _problem(3, 2, 5, torch.float64)
    # Fixed noise, so the function is deterministic; log_alpha scaled with T so that the
    # softmax is not saturated and the finite differences see something.
    noise = sample_gumbel((3, 2, 5), log_alpha) * temperature
    log_alpha = (log_alpha * temperature).requires_grad_()
    x = x.requires_grad_()
    t = torch.tensor(temperature, dtype=torch.float64)

    def fn(xx: torch.Tensor, la: torch.Tensor) -> torch.Tensor:
        return relaxed_select_with_noise(xx, la, t, noise)

    assert torch.autograd.gradcheck(fn, (x, log_alpha))


def test_non_contiguous_inputs(path: str) -> None:
    x, log_alpha = _problem(10, 4, 30, torch.float64)
    noise = sample_gumbel((4, 10, 30), log_alpha).transpose(0, 1)  # B x K x D, not contiguous
    x_t = x.T.contiguous().T  # same values, column-major
    la_t = log_alpha.T.contiguous().T.requires_grad_()
    la = log_alpha.clone().requires_grad_()
    out = relaxed_select_with_noise(x_t, la_t, 0.3, noise)
    ref = relaxed_select_reference(x, la, 0.3, noise.contiguous())
    torch.testing.assert_close(out, ref)
    out.sum().backward()
    ref.sum().backward()
    torch.testing.assert_close(la_t.grad, la.grad)


def test_gradient_with_respect_to_x_when_asked(path: str) -> None:
    x, log_alpha = _problem(5, 4, 30, torch.float64)
    noise = sample_gumbel((5, 4, 30), log_alpha)
    weight = torch.randn(5, 4, dtype=torch.float64)
    grads = []
    for fn in (relaxed_select_with_noise, relaxed_select_reference):
        xx, la = x.clone().requires_grad_(), log_alpha.clone().requires_grad_()
        (fn(xx, la, 0.7, noise) * weight).sum().backward()
        grads.append((xx.grad, la.grad))
    torch.testing.assert_close(grads[0], grads[1])


def test_sampled_path_gives_the_textbook_gradient_for_its_own_noise(path: str) -> None:
    # relaxed_select draws its own noise; recover it from a run with the same seed and check
    # value and gradient against the textbook formula.
    x, log_alpha = _problem(16, 10, 77, torch.float32)
    t = torch.tensor(0.5)
    torch.manual_seed(123)
    noise = sample_gumbel((16, 10, 77), log_alpha)
    torch.manual_seed(123)
    la_fast = log_alpha.clone().requires_grad_()
    out_fast = relaxed_select(x, la_fast, t, "per_example")
    out_fast.sum().backward()
    la_ref = log_alpha.clone().requires_grad_()
    out_ref = relaxed_select_reference(x, la_ref, t, noise)
    out_ref.sum().backward()
    torch.testing.assert_close(out_fast, out_ref)
    torch.testing.assert_close(la_fast.grad, la_ref.grad)


@pytest.mark.parametrize("numel_shape", [(16, 10, 77), (128, 50, 784)])
def test_sampled_selection_is_reproducible_under_manual_seed(numel_shape) -> None:
    b, k, d = numel_shape
    x, log_alpha = _problem(b, k, d, torch.float32)
    outs = []
    for _ in range(2):
        torch.manual_seed(7)
        outs.append(relaxed_select(x, log_alpha, 1.0))
    assert torch.equal(outs[0], outs[1])
    assert not torch.equal(outs[0], relaxed_select(x, log_alpha, 1.0))


@pytest.mark.parametrize("temperature", [0.01, 10.0])
def test_extreme_temperatures_stay_finite_and_convex(path: str, temperature: float) -> None:
    x, log_alpha = _problem(64, 20, 300, torch.float32)
    log_alpha = (log_alpha * 50).requires_grad_()  # large logits on top of a small T
    out = relaxed_select(x, log_alpha, torch.tensor(temperature))
    out.sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(log_alpha.grad).all()
    assert (out >= x.min(1, keepdim=True).values - 1e-5).all()
    assert (out <= x.max(1, keepdim=True).values + 1e-5).all()


def test_noise_shapes() -> None:
    x, log_alpha = _problem(6, 4, 9, torch.float32)
    assert sample_gumbel((6, 4, 9), log_alpha).shape == (6, 4, 9)
    assert sample_gumbel(log_alpha.shape, log_alpha).shape == (4, 9)
    for mode in NOISE_MODES:
        assert relaxed_select(x, log_alpha, 1.0, mode).shape == (6, 4)
    with pytest.raises(ValueError, match="per_example"):
        relaxed_select(x, log_alpha, 1.0, "per_feature")


def test_per_batch_noise_is_shared_by_the_batch() -> None:
    # With identical examples, shared noise gives identical rows; per-example noise does not.
    x = torch.rand(1, 20).expand(8, 20).contiguous()
    log_alpha = torch.zeros(5, 20)
    shared = relaxed_select(x, log_alpha, 1.0, "per_batch")
    assert torch.allclose(shared, shared[:1].expand_as(shared))
    separate = relaxed_select(x, log_alpha, 1.0, "per_example")
    assert not torch.allclose(separate, separate[:1].expand_as(separate))


def test_per_batch_with_explicit_noise_is_the_matrix_product() -> None:
    x, log_alpha = _problem(6, 4, 9, torch.float64)
    noise = sample_gumbel(log_alpha.shape, log_alpha)
    expected = x @ torch.softmax((log_alpha + noise) / 0.3, -1).T
    torch.testing.assert_close(relaxed_select_with_noise(x, log_alpha, 0.3, noise), expected)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_noise_is_standard_gumbel(dtype) -> None:
    torch.manual_seed(0)
    big = (1000, 1000)
    g = sample_gumbel(big, torch.empty(0, dtype=dtype)).double()
    assert g.dtype == torch.float64 and torch.isfinite(g).all()
    # 1e6 draws: the standard error of the mean is 1.28e-3 and of the variance about 3e-3.
    assert abs(g.mean().item() - EULER_GAMMA) < 0.01
    assert abs(g.var().item() - math.pi**2 / 6) < 0.03
    # The CDF exp(-exp(-t)) at a few points, the tails included.
    for t in (-1.5, 0.0, 1.0, 4.0):
        empirical = (g <= t).double().mean().item()
        assert abs(empirical - math.exp(-math.exp(-t))) < 0.003, t
    # Both sources of random bits (PyTorch's generator for small draws, NumPy's SFC64 for big
    # ones) give the same distribution.
    small = torch.cat([sample_gumbel((50, 20), torch.empty(0, dtype=dtype)).double().flatten() for _ in range(1000)])
    assert abs(small.mean().item() - EULER_GAMMA) < 0.01
    assert abs(small.var().item() - math.pi**2 / 6) < 0.03
    assert sample_gumbel((3, 5), torch.empty(0, dtype=dtype)).dtype == dtype


def test_uniform_grid_has_no_endpoints() -> None:
    # u never reaches 0 or 1, so -log(-log u) is always finite without clamping.
    torch.manual_seed(0)
    g = sample_gumbel((4_000_000,), torch.empty(0))
    assert torch.isfinite(g).all()
    assert g.max().item() < 17.0 and g.min().item() > -3.0


def _saved_big_buffers(fn, big: int) -> int:
    """How many distinct storages of at least ``big`` elements autograd keeps for backward."""
    storages: set[int] = set()

    def pack(t: torch.Tensor) -> torch.Tensor:
        if t.numel() >= big:
            storages.add(t.untyped_storage().data_ptr())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    out.sum().backward()
    return len(storages)


@pytest.mark.parametrize("x_requires_grad", [False, True])
def test_at_most_one_batch_sized_buffer_is_saved_for_backward(path: str, x_requires_grad: bool) -> None:
    b, k, d = 32, 10, 77
    x, log_alpha = _problem(b, k, d, torch.float32)
    x.requires_grad_(x_requires_grad)
    la = log_alpha.clone().requires_grad_()
    assert _saved_big_buffers(lambda: relaxed_select(x, la, torch.tensor(0.5)), b * k * d) == 1
    noise = sample_gumbel((b, k, d), log_alpha)
    assert _saved_big_buffers(lambda: relaxed_select_with_noise(x, la, 0.5, noise), b * k * d) == 1


def test_backward_twice_with_retain_graph_gives_the_same_gradient(path: str) -> None:
    # The saved weights are not modified by backward.
    x, log_alpha = _problem(4, 3, 8, torch.float32)
    la = log_alpha.requires_grad_()
    out = (relaxed_select(x, la, 1.0) * torch.randn(4, 3)).sum()
    (first,) = torch.autograd.grad(out, la, retain_graph=True)
    (second,) = torch.autograd.grad(out, la)
    assert torch.equal(first, second)


def test_temperature_gradient_is_refused() -> None:
    x, log_alpha = _problem(4, 3, 8, torch.float32)
    with pytest.raises(NotImplementedError):
        relaxed_select(x, log_alpha, torch.tensor(1.0, requires_grad=True))


def test_selectors_use_the_fast_path_and_train(path: str) -> None:
    torch.manual_seed(0)
    for cls in (DirectSelector, IndirectSelector):
        selector = cls(num_features=30, k=5).train()
        selector.set_temperature(0.01)
        x = torch.rand(8, 30)
        out = selector(x)
        out.sum().backward()
        assert all(torch.isfinite(p.grad).all() for p in selector.parameters())


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_compiled_kernels_match_textbook(dtype) -> None:
    # The optional torch.compile'd kernels (off by default): same check as the eager fast path.
    from ipcae import gumbel

    x, log_alpha = _problem(16, 10, 77, dtype)
    t = torch.tensor(0.05, dtype=dtype)
    weight = torch.randn(16, 10, dtype=dtype)
    noise = sample_gumbel((16, 10, 77), log_alpha)
    gumbel.set_compiled(True)
    try:
        la_fast = log_alpha.clone().requires_grad_()
        (relaxed_select_with_noise(x, la_fast, t, noise) * weight).sum().backward()
        torch.manual_seed(5)
        sampled = relaxed_select(x, log_alpha, t)
    finally:
        gumbel.set_compiled(False)
    la_ref = log_alpha.clone().requires_grad_()
    (relaxed_select_reference(x, la_ref, t, noise) * weight).sum().backward()
    torch.testing.assert_close(la_fast.grad, la_ref.grad, **_tolerances(dtype, 0.05))
    # The compiled sampler turns the same random bits into the same selection as the eager one.
    torch.manual_seed(5)
    torch.testing.assert_close(sampled, relaxed_select(x, log_alpha, t), **_tolerances(dtype, 0.05))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("temperature", [0.01, 1.0, 10.0])
def test_fast_path_matches_textbook_on_cuda(temperature: float) -> None:
    x, log_alpha = (t.cuda() for t in _problem(128, 50, 784, torch.float32))
    noise = sample_gumbel((128, 50, 784), log_alpha)
    assert noise.device == log_alpha.device and torch.isfinite(noise).all()
    t = torch.tensor(temperature, device="cuda")
    weight = torch.randn(128, 50, device="cuda")
    la_fast = log_alpha.clone().requires_grad_()
    out_fast = relaxed_select_with_noise(x, la_fast, t, noise)
    (out_fast * weight).sum().backward()
    la_ref = log_alpha.clone().requires_grad_()
    out_ref = relaxed_select_reference(x, la_ref, t, noise)
    (out_ref * weight).sum().backward()
    tol = _tolerances(torch.float32, temperature)
    torch.testing.assert_close(out_fast, out_ref, **tol)
    torch.testing.assert_close(la_fast.grad, la_ref.grad, **tol)
    # The sampled path on the device: finite, convex, and reproducible.
    torch.manual_seed(3)
    a = relaxed_select(x, log_alpha, t)
    torch.manual_seed(3)
    assert torch.equal(a, relaxed_select(x, log_alpha, t))
    assert (a <= x.max(1, keepdim=True).values + 1e-5).all()
    g = sample_gumbel((1000, 1000), log_alpha).double()
    assert abs(g.mean().item() - EULER_GAMMA) < 0.01 and abs(g.var().item() - math.pi**2 / 6) < 0.03
