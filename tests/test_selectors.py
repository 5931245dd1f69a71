"""Selectors, decoders and the selection metrics, with the values the method fixes."""

from __future__ import annotations

import math

import pytest
import torch

from ipcae.decoders import MLPDecoder
from ipcae.errors import ConfigError
from ipcae.metrics import entropy, gjsd, mean_max_probability, unique_percentage
from ipcae.selectors import DirectSelector, IndirectSelector


@pytest.mark.parametrize("cls", [DirectSelector, IndirectSelector])
def test_hard_selection_is_column_indexing(cls) -> None:
    torch.manual_seed(0)
    selector = cls(num_features=30, k=7).eval()
    x = torch.randn(5, 30)
    idx = selector.selected_indices()
    assert idx.shape == (7,)
    assert torch.equal(selector(x), x[:, idx])


def test_hard_selection_keeps_duplicates() -> None:
    selector = DirectSelector(num_features=4, k=3).eval()
    with torch.no_grad():
        selector.log_alpha.copy_(torch.tensor([[0.0, 5, 0, 0], [0, 5, 0, 0], [0, 0, 0, 5]]))
    x = torch.arange(8.0).reshape(2, 4)
    assert selector.selected_indices().tolist() == [1, 1, 3]
    assert torch.equal(selector(x), x[:, [1, 1, 3]])


@pytest.mark.parametrize("cls", [DirectSelector, IndirectSelector])
@pytest.mark.parametrize("noise", ["per_example", "per_batch"])
def test_relaxed_selection_shapes_and_gradients(cls, noise: str) -> None:
    selector = cls(num_features=12, k=4, noise=noise).train()
    x = torch.rand(6, 12)
    out = selector(x)
    assert out.shape == (6, 4)
    out.sum().backward()
    grads = [p.grad for p in selector.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_relaxed_selection_is_a_convex_combination_of_the_features() -> None:
    # Every relaxed row is a probability vector over features, so each output lies within the
    # range of the example's feature values.
    selector = DirectSelector(num_features=10, k=5).train()
    x = torch.rand(8, 10)
    out = selector(x)
    assert (out >= x.min(1, keepdim=True).values - 1e-6).all()
    assert (out <= x.max(1, keepdim=True).values + 1e-6).all()


def test_low_temperature_relaxed_sample_approaches_the_argmax() -> None:
    selector = DirectSelector(num_features=6, k=2).train()
    with torch.no_grad():
        selector.log_alpha.copy_(torch.tensor([[0.0, 0, 50, 0, 0, 0], [0, 0, 0, 0, 0, 50]]))
    selector.set_temperature(0.01)
    x = torch.rand(4, 6)
    torch.testing.assert_close(selector(x), x[:, [2, 5]])


def test_direct_init_reference_rows_are_normalised_uniform() -> None:
    torch.manual_seed(0)
    selector = DirectSelector(num_features=50, k=8)
    log_alpha = selector.log_alpha.detach()
    assert log_alpha.shape == (8, 50)
    assert (log_alpha >= 0).all()
    torch.testing.assert_close(log_alpha.sum(1), torch.ones(8))


def test_direct_glorot_init_has_glorot_scale() -> None:
    torch.manual_seed(0)
    log_alpha = DirectSelector(num_features=400, k=300, init="glorot_normal").log_alpha.detach()
    expected_std = math.sqrt(2.0 / (400 + 300))
    assert abs(log_alpha.std().item() - expected_std) / expected_std < 0.05


def test_indirect_parameterisation() -> None:
    torch.manual_seed(0)
    selector = IndirectSelector(num_features=20, k=5)
    assert selector.embedding.shape == (5, 20)  # P defaults to D
    assert selector.projection.weight.shape == (20, 20)
    expected = selector.embedding @ selector.projection.weight.T + selector.projection.bias
    torch.testing.assert_close(selector.logits(), expected)
    assert IndirectSelector(num_features=20, k=5, embedding_dim=3).embedding.shape == (5, 3)


@pytest.mark.parametrize("k", [0, -1, 65, 2.5])
def test_k_out_of_range_is_a_clear_error(k) -> None:
    with pytest.raises(ConfigError, match=r"model\.k=.*1 <= model\.k <= 64"):
        DirectSelector(num_features=64, k=k)


def test_unknown_noise_mode_is_rejected() -> None:
    with pytest.raises(ConfigError, match="per_example"):
        IndirectSelector(num_features=8, k=2, noise="sometimes")


@pytest.mark.parametrize(
    ("indices", "expected"),
    [([0, 1, 2, 3], 100.0), ([5, 5, 5, 5], 25.0), ([1, 2, 1, 3, 2], 60.0), ([7], 100.0)],
)
def test_unique_percentage_exact(indices: list[int], expected: float) -> None:
    assert unique_percentage(torch.tensor(indices)) == pytest.approx(expected)


def test_gjsd_of_known_distributions() -> None:
    k = 4
    disjoint = torch.eye(k)  # K one-hot rows on different features: the maximum, log K
    assert gjsd(disjoint).item() == pytest.approx(math.log(k))
    identical = torch.full((k, 6), 1 / 6)  # identical rows: 0
    assert gjsd(identical).item() == pytest.approx(0.0, abs=1e-7)
    # Two rows [1, 0] and [0.5, 0.5]: H(mean) - mean H = H([.75, .25]) - (0 + log 2) / 2.
    rows = torch.tensor([[1.0, 0.0], [0.5, 0.5]])
    h_mean = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert gjsd(rows).item() == pytest.approx(h_mean - math.log(2) / 2)


def test_entropy_and_max_probability() -> None:
    assert entropy(torch.tensor([0.5, 0.5])).item() == pytest.approx(math.log(2))
    assert entropy(torch.tensor([1.0, 0.0])).item() == 0.0
    probs = torch.tensor([[0.9, 0.1], [0.4, 0.6]])
    assert mean_max_probability(probs).item() == pytest.approx(0.75)


def test_gjsd_gradient_is_finite_where_the_softmax_underflows() -> None:
    """IP-CAE's rows spread their logits by hundreds within epochs: exact zeros in the softmax must
    give a zero gradient there (xlogy(p, p) alone gives 0 / 0), and the same gradient elsewhere."""
    logits = torch.tensor([[0.0, 200.0, -200.0], [150.0, 0.0, 10.0]], requires_grad=True)
    probs = torch.softmax(logits, dim=-1)
    assert (probs == 0).sum() == 4  # e^-140 and below underflow in float32
    gjsd(probs).backward()
    assert torch.isfinite(logits.grad).all()
    # Away from zeros the value and gradient are xlogy's, bit for bit.
    smooth = torch.tensor([[0.3, 1.2, -0.7], [0.5, 0.0, 2.0]], requires_grad=True)
    reference = smooth.detach().clone().requires_grad_()
    value = gjsd(torch.softmax(smooth, dim=-1))
    q = torch.softmax(reference, dim=-1)

    def xlogy_entropy(t: torch.Tensor) -> torch.Tensor:
        return -torch.special.xlogy(t, t).sum(-1)

    expected = xlogy_entropy(q.mean(0)) - xlogy_entropy(q).mean()
    value.backward()
    expected.backward()
    assert value.item() == expected.item() and torch.equal(smooth.grad, reference.grad)


def test_diversity_weight_rewards_gjsd() -> None:
    selector = DirectSelector(num_features=6, k=3, diversity_weight=2.0)
    expected = -2.0 * gjsd(selector.probabilities())
    torch.testing.assert_close(selector.regularization(), expected)
    assert DirectSelector(num_features=6, k=3).regularization() == 0.0


def test_mlp_decoder_reference_architecture() -> None:
    decoder = MLPDecoder(in_features=10, out_features=3)
    kinds = [type(m).__name__ for m in decoder.net]
    assert kinds == ["Linear", "LayerNorm", "LeakyReLU", "Linear"]
    assert decoder.net[0].out_features == 200
    assert decoder.net[2].negative_slope == 0.2
    assert decoder(torch.rand(4, 10)).shape == (4, 3)


def test_linear_decoder_and_dropout() -> None:
    assert [type(m).__name__ for m in MLPDecoder(10, 3, hidden_sizes=[]).net] == ["Linear"]
    deep = MLPDecoder(10, 3, hidden_sizes=[32, 16], layer_norm=False, dropout=0.1)
    assert [type(m).__name__ for m in deep.net] == [
        "Linear", "LeakyReLU", "Dropout", "Linear", "LeakyReLU", "Dropout", "Linear",
    ]  # fmt: skip


def test_all_features_is_the_identity_with_k_equal_to_d() -> None:
    from ipcae.selectors import AllFeatures

    selector = AllFeatures(num_features=7, k=3)
    x = torch.randn(4, 7)
    assert selector.k == selector.out_features == 7
    assert torch.equal(selector.train()(x), x) and torch.equal(selector.eval()(x), x)
    assert selector.selected_indices().tolist() == list(range(7))
