"""Memory-bounded per-example selection, noise="auto", and the refusal of a huge IP-CAE map.

Above an element budget the per-example Gumbel-softmax runs in chunks that keep nothing of size
B x K x D for backward and redraw their noise there. It must give the textbook values and
gradients for its noise, stay within its budget, and leave everything below the budget (the
paper's sizes) exactly as it was.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from ipcae import gumbel
from ipcae.errors import ConfigError
from ipcae.gumbel import (
    DEFAULT_MAX_NOISE_ELEMENTS,
    chunk_gumbel_noise,
    chunk_shape,
    relaxed_select,
    relaxed_select_reference,
    relaxed_select_with_noise,
    sample_gumbel,
)
from ipcae.selectors import DirectSelector, IndirectSelector

ROOT = Path(__file__).resolve().parents[1]
PAPER_SIZES = [(16, 10, 77), (128, 50, 784)]  # Mice Protein, MNIST: B x K x D


def _problem(b: int, k: int, d: int, dtype: torch.dtype, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(b, d, generator=gen, dtype=dtype), torch.randn(k, d, generator=gen, dtype=dtype) * 2


def _tolerances(dtype: torch.dtype) -> dict[str, float]:
    return {"rtol": 1e-10, "atol": 1e-10} if dtype == torch.float64 else {"rtol": 2e-4, "atol": 2e-4}


@pytest.fixture
def chunked_calls(monkeypatch) -> list[int]:
    """Counts calls of the chunked path (so a test knows which path it exercised)."""
    calls: list[int] = []
    original = gumbel._chunked_select

    def spy(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(gumbel, "_chunked_select", spy)
    return calls


def _value_and_grads(fn, x: torch.Tensor, log_alpha: torch.Tensor, weight: torch.Tensor):
    xx, la = x.clone().requires_grad_(), log_alpha.clone().requires_grad_()
    out = fn(xx, la)
    (out * weight).sum().backward()
    return out.detach(), xx.grad, la.grad


# budget -> chunks: 2000 = whole examples (5 per chunk); 300 = blocks of 3 rows of one example;
# 2 = one row of D at a time (the smallest unit; a row alone exceeds the budget).
@pytest.mark.parametrize("budget", [2000, 300, 2])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("temperature", [0.01, 1.0, 10.0])
def test_chunked_equals_unchunked_for_the_same_noise(chunked_calls, budget, dtype, temperature) -> None:
    b, k, d = 11, 7, 40
    x, log_alpha = _problem(b, k, d, dtype)
    noise = sample_gumbel((b, k, d), log_alpha)
    before = noise.clone()
    weight = torch.randn(b, k, dtype=dtype, generator=torch.Generator().manual_seed(1))
    t = torch.tensor(temperature)

    chunked = _value_and_grads(lambda xx, la: relaxed_select_with_noise(xx, la, t, noise, budget), x, log_alpha, weight)
    assert chunked_calls, "the chunked path was not used"
    reference = _value_and_grads(
        lambda xx, la: relaxed_select_reference(xx, la, t.to(dtype), noise), x, log_alpha, weight
    )
    unchunked = _value_and_grads(lambda xx, la: relaxed_select_with_noise(xx, la, t, noise), x, log_alpha, weight)
    assert len(chunked_calls) == 1, "below the default budget the unchunked path must be used"
    for name, c, r, u in zip(("value", "grad x", "grad log_alpha"), chunked, reference, unchunked, strict=True):
        torch.testing.assert_close(c, r, **_tolerances(dtype), msg=name)
        torch.testing.assert_close(c, u, **_tolerances(dtype), msg=name)
    assert torch.equal(noise, before), "the explicit noise must not be modified"


def _noise_of_the_call(seed: int, b: int, k: int, d: int, budget: int, dtype: torch.dtype) -> torch.Tensor:
    """The whole B x K x D noise the chunked path drew, reassembled from its chunks' seeds."""
    examples, rows = chunk_shape(b, k, d, budget)
    blocks = [
        torch.cat(
            [
                chunk_gumbel_noise(
                    seed, (b0, min(b0 + examples, b), k0, min(k0 + rows, k)), d, dtype, torch.device("cpu")
                )
                for k0 in range(0, k, rows)
            ],
            dim=1,
        )
        for b0 in range(0, b, examples)
    ]
    return torch.cat(blocks, dim=0)


@pytest.mark.parametrize("budget", [3000, 500])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sampled_chunked_path_redraws_the_same_noise_in_backward(chunked_calls, budget, dtype) -> None:
    # Gradients of the textbook formula on the forward's noise: a backward that drew other noise
    # (or kept a wrong seed) would give other gradients.
    b, k, d = 13, 6, 50
    x, log_alpha = _problem(b, k, d, dtype)
    weight = torch.randn(b, k, dtype=dtype)
    t = torch.tensor(0.3)
    torch.manual_seed(11)
    sampled = _value_and_grads(lambda xx, la: relaxed_select(xx, la, t, max_elements=budget), x, log_alpha, weight)
    assert chunked_calls
    torch.manual_seed(11)
    seed = int(torch.randint(0, 2**62, (), dtype=torch.int64))  # the call's one draw
    noise = _noise_of_the_call(seed, b, k, d, budget, dtype)
    reference = _value_and_grads(
        lambda xx, la: relaxed_select_reference(xx, la, t.to(dtype), noise), x, log_alpha, weight
    )
    for name, s, r in zip(("value", "grad x", "grad log_alpha"), sampled, reference, strict=True):
        torch.testing.assert_close(s, r, **_tolerances(dtype), msg=name)
    # Reproducible under manual_seed, fresh without it, and standard Gumbel noise per chunk.
    torch.manual_seed(11)
    assert torch.equal(relaxed_select(x, log_alpha, t, max_elements=budget), sampled[0])
    assert not torch.equal(relaxed_select(x, log_alpha, t, max_elements=budget), sampled[0])
    assert abs(noise.double().mean().item() - 0.5772) < 0.05


def test_chunked_path_through_an_indirect_selector_matches_the_textbook(chunked_calls) -> None:
    torch.manual_seed(0)
    b, k, d = 10, 5, 30
    small = IndirectSelector(num_features=d, k=k, embedding_dim=7, max_noise_elements=400).train()
    ref = IndirectSelector(num_features=d, k=k, embedding_dim=7).train()
    ref.load_state_dict(small.state_dict())
    small.set_temperature(0.5)
    x = torch.rand(b, d)
    torch.manual_seed(4)
    small(x).pow(2).sum().backward()
    assert chunked_calls
    torch.manual_seed(4)
    seed = int(torch.randint(0, 2**62, (), dtype=torch.int64))
    noise = _noise_of_the_call(seed, b, k, d, 400, torch.float32)
    relaxed_select_reference(x, ref.logits(), 0.5, noise).pow(2).sum().backward()
    for name, p in ref.named_parameters():
        torch.testing.assert_close(dict(small.named_parameters())[name].grad, p.grad, rtol=2e-4, atol=1e-5, msg=name)


class _LargestOutput(TorchDispatchMode):
    """Records the element count of the largest tensor any operator returns."""

    def __init__(self) -> None:
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, tuple | list) else (out,):
            if isinstance(t, torch.Tensor):
                self.largest = max(self.largest, t.numel())
        return out


@pytest.mark.parametrize("x_requires_grad", [False, True])
def test_no_tensor_above_the_chunk_size_is_made(x_requires_grad: bool) -> None:
    b, k, d, budget = 64, 20, 300, 40_000  # B x K x D = 384,000; chunk <= 20,000 (3 examples)
    x, log_alpha = _problem(b, k, d, torch.float32)
    x.requires_grad_(x_requires_grad)
    inherent = max(budget // 2, b * d, k * d)  # x and log_alpha (and their gradients) themselves
    sizes = {}
    for name, max_elements in (("chunked", budget), ("unchunked", None)):
        la = log_alpha.clone().requires_grad_()
        with _LargestOutput() as mode:
            relaxed_select(x, la, torch.tensor(0.5), max_elements=max_elements).sum().backward()
        sizes[name] = mode.largest
    assert sizes["chunked"] <= inherent, sizes
    assert sizes["unchunked"] >= b * k * d, sizes  # the measure sees the unchunked B x K x D


def test_chunks_hold_at_most_half_the_budget() -> None:
    for b, k, d, budget in [(128, 50, 784, 1 << 20), (7, 50, 10_000, 100_000), (3, 4, 1000, 50), (1000, 1, 1, 2)]:
        examples, rows = chunk_shape(b, k, d, budget)
        assert 1 <= examples <= b and 1 <= rows <= k
        assert examples * rows * d <= max(budget // 2, d), (b, k, d, budget)
        if rows < k:
            assert examples == 1


def test_peak_resident_memory_stays_within_the_budget_in_a_subprocess() -> None:
    # B x K x D = 2**27: the unchunked forward and backward would hold two such float32 tensors
    # (1 GiB); with a budget of 2**24 elements (64 MiB) the growth of the peak must stay near it.
    budget = 1 << 24
    script = textwrap.dedent(
        f"""
        import resource, torch
        torch.set_num_threads(1)
        from ipcae.gumbel import relaxed_select
        x, la = torch.randn(2048, 1024), torch.randn(64, 1024, requires_grad=True)
        relaxed_select(x[:8], la, 0.5, max_elements={budget}).sum().backward()  # warm up
        la.grad = None
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        relaxed_select(x, la, torch.tensor(0.5), max_elements={budget}).sum().backward()
        print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) * 1024)
        """
    )
    env = {"PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    growth = int(done.stdout.split()[-1])
    assert growth < 1.5 * budget * 4, f"peak RSS grew by {growth / 2**20:.0f} MiB with a 64 MiB budget"


@pytest.mark.parametrize("shape", PAPER_SIZES)
def test_default_budget_leaves_paper_sizes_on_the_old_path(shape, monkeypatch) -> None:
    b, k, d = shape
    assert b * k * d * 16 < DEFAULT_MAX_NOISE_ELEMENTS
    monkeypatch.setattr(gumbel, "_chunked_select", lambda *a, **kw: pytest.fail("chunked path at a paper size"))
    x, log_alpha = _problem(b, k, d, torch.float32)
    t = torch.tensor(0.7)
    torch.manual_seed(5)
    la = log_alpha.clone().requires_grad_()
    out = relaxed_select(x, la, t)
    out.sum().backward()
    state = torch.get_rng_state()
    # The implementation before the budget existed: one seed from PyTorch's generator, the bits
    # from it, the in-place fast path. Same bits, same values, same gradient, same RNG state after.
    torch.manual_seed(5)
    ints = gumbel._random_integers(b * k * d, 23, torch.device("cpu")).view(b, k, d)
    la_old = log_alpha.clone().requires_grad_()
    old = gumbel._select(x, la_old, torch.reciprocal(t), ints, True)
    old.sum().backward()
    assert torch.equal(out, old) and torch.equal(la.grad, la_old.grad)
    assert torch.equal(state, torch.get_rng_state())
    # And through the selectors, with their default options.
    for cls in (DirectSelector, IndirectSelector):
        torch.manual_seed(1)
        selector = cls(num_features=d, k=k).train()
        selector(x).sum().backward()


def test_budget_must_be_an_integer() -> None:
    x, log_alpha = _problem(2, 2, 5, torch.float32)
    for bad in (0, 1.5, True):
        with pytest.raises(ValueError, match="max_elements"):
            relaxed_select(x, log_alpha, 1.0, max_elements=bad)
    with pytest.raises(ConfigError, match="max_noise_elements=-3") as err:
        DirectSelector(num_features=5, k=2, max_noise_elements=-3)
    assert "\n" not in str(err.value)


def test_auto_noise_chooses_per_example_and_says_why(caplog) -> None:
    with caplog.at_level(logging.INFO, logger="ipcae"):
        selector = DirectSelector(num_features=784, k=50, noise="auto")
    assert selector.noise == "per_example"
    (record,) = [r for r in caplog.records if "noise=auto" in r.getMessage()]
    assert record.levelno == logging.INFO
    assert "chose per_example" in record.getMessage() and "50 x 784 = 39,200" in record.getMessage()


def test_auto_noise_falls_back_to_per_batch_when_one_example_exceeds_the_budget(caplog) -> None:
    with caplog.at_level(logging.INFO, logger="ipcae"):
        selector = IndirectSelector(num_features=1000, k=20, embedding_dim=8, noise="auto", max_noise_elements=19_999)
    assert selector.noise == "per_batch"
    message = " ".join(r.getMessage() for r in caplog.records)
    assert "chose per_batch" in message and "20,000" in message and "19,999" in message
    # At exactly one example's K x D it is still per-example.
    assert IndirectSelector(
        num_features=1000, k=20, embedding_dim=8, noise="auto", max_noise_elements=20_000
    ).noise == ("per_example")


@pytest.mark.parametrize("cls", [DirectSelector, IndirectSelector])
def test_auto_noise_draws_like_per_example_where_it_chooses_it(cls) -> None:
    # Same parameters and the same relaxed sample as noise=per_example under one seed: the option
    # adds no random draws.
    outs = []
    for noise in ("auto", "per_example"):
        torch.manual_seed(2)
        selector = cls(num_features=77, k=10, noise=noise).train()
        outs.append((selector.state_dict(), selector(torch.rand(16, 77))))
    assert all(torch.equal(outs[0][0][n], outs[1][0][n]) for n in outs[0][0])
    assert torch.equal(outs[0][1], outs[1][1])


def test_p_equal_d_is_refused_when_the_map_is_too_big() -> None:
    with pytest.raises(ConfigError) as err:
        IndirectSelector(num_features=100_000, k=50)
    message = str(err.value)
    assert "\n" not in message
    assert "100,000" in message and "37.3 GiB" in message and "model.selector.embedding_dim=256" in message
    # An explicit P is the user's choice; below the limit P = D is built as before.
    assert IndirectSelector(num_features=100_000, k=50, embedding_dim=4).projection.weight.shape == (100_000, 4)
    with pytest.raises(ConfigError, match=r"max_map_gib=0\.01"):
        IndirectSelector(num_features=2000, k=5, max_map_gib=0.01)  # 15.3 MiB > 10.2 MiB
    assert IndirectSelector(num_features=2000, k=5, max_map_gib=0.02).projection.weight.shape == (2000, 2000)


def test_the_new_selector_options_keep_the_store_keys_of_committed_runs() -> None:
    # The options were added to the selector YAMLs after the paper runs were stored; at their
    # defaults they change no outcome, so the store must still find those runs (no rerun).
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import open_dict

    from ipcae.store import config_key, run_dir

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=["experiment=paper/mice_protein_classification", "model=ipcae", "seed=0"])
    assert "max_noise_elements" in cfg.model.selector and "max_map_gib" in cfg.model.selector
    assert (run_dir(ROOT / "results" / "paper", cfg) / "results.json").is_file()
    key = config_key(cfg)
    with open_dict(cfg):
        cfg.model.selector.max_map_gib = 8.0
    assert config_key(cfg) == key
    cfg.model.selector.max_noise_elements = 1000  # a budget that changes the random stream
    assert config_key(cfg) != key


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_chunked_path_on_cuda_redraws_the_same_noise() -> None:
    # On a device the chunk noise comes from a torch.Generator seeded per chunk, not from NumPy.
    b, k, d, budget = 64, 10, 500, 20_000
    x, log_alpha = (t.cuda() for t in _problem(b, k, d, torch.float32))
    weight = torch.randn(b, k, device="cuda")
    t = torch.tensor(0.3, device="cuda")
    torch.manual_seed(8)
    sampled = _value_and_grads(lambda xx, la: relaxed_select(xx, la, t, max_elements=budget), x, log_alpha, weight)
    torch.manual_seed(8)
    seed = int(torch.randint(0, 2**62, (), dtype=torch.int64))
    examples, rows = chunk_shape(b, k, d, budget)
    assert rows == k
    noise = torch.cat(
        [
            chunk_gumbel_noise(seed, (b0, min(b0 + examples, b), 0, k), d, torch.float32, x.device)
            for b0 in range(0, b, examples)
        ]
    )
    reference = _value_and_grads(lambda xx, la: relaxed_select_reference(xx, la, t, noise), x, log_alpha, weight)
    for s, r in zip(sampled, reference, strict=True):
        torch.testing.assert_close(s, r, rtol=2e-4, atol=2e-4)
