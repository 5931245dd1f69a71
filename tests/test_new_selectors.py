"""The newer selectors: Gumbel top-k subsets, SAND, Sequential Attention (and the IP-CAE + GJSD preset).

Exact values where the papers fix them; one short command-line run per method.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ipcae.data.datamodule import IndexBatches
from ipcae.errors import ConfigError
from ipcae.gumbel import sample_gumbel
from ipcae.schedule import CompleteSelectionCheckpoint, TrainingSteps, optimiser_steps_per_epoch
from ipcae.selectors import (
    GumbelTopKSelector,
    SANDSelector,
    SequentialAttentionSelector,
    StepScheduled,
    TemperatureControlled,
)
from ipcae.selectors.sand import normalised_gains
from ipcae.selectors.sequential import phase_boundaries
from ipcae.selectors.subset import (
    log_one_minus_softmax,
    relaxed_topk_mask,
    relaxed_topk_rounds,
    relaxed_topk_rounds_reference,
    topk_mask,
)

ROOT = Path(__file__).resolve().parents[1]

# -- Gumbel top-k (Xie & Ermon 2019) -------------------------------------------------------------


def test_relaxed_topk_rounds_follow_the_recursion_exactly() -> None:
    # a_1 = softmax(r / T), r_2 = r_1 + log(1 - a_1), a_2 = softmax(r_2 / T), by hand for D = 3, T = 0.5.
    r = torch.tensor([1.0, 0.5, -0.3], dtype=torch.float64)
    t = 0.5
    e1 = [math.exp(v / t) for v in r.tolist()]
    a1 = [v / sum(e1) for v in e1]
    r2 = [v + math.log(1 - a) for v, a in zip(r.tolist(), a1, strict=True)]
    e2 = [math.exp(v / t) for v in r2]
    a2 = [v / sum(e2) for v in e2]
    rounds = relaxed_topk_rounds(r, 2, t)
    torch.testing.assert_close(rounds, torch.tensor([a1, a2], dtype=torch.float64))
    torch.testing.assert_close(relaxed_topk_mask(r, 2, t), torch.tensor(a1, dtype=torch.float64) + torch.tensor(a2))


def test_relaxed_topk_mask_entries_can_exceed_one() -> None:
    # K = D = 2, T = 1, a_1 = (0.9, 0.1): r_2 = (log 9 + log 0.1, log 0.9) gives a_2 = (0.5, 0.5), so the
    # first feature collects 1.4. The relaxation sums to K but does not bound its entries by 1.
    r = torch.tensor([math.log(9.0), 0.0], dtype=torch.float64)
    torch.testing.assert_close(relaxed_topk_mask(r, 2, 1.0), torch.tensor([1.4, 0.6], dtype=torch.float64))


def test_a_round_that_rounds_to_one_is_not_taken_again() -> None:
    # T = 0.01, a lead of 100: round 1 is exactly one-hot in float32. log(1 - a_1) of the taken feature
    # is -(its lead) / T = -10000 here, so round 2 takes the runner-up; the authors' floor of 1 - a at
    # the smallest float would subtract only about 87 and take feature 2 again.
    r = torch.tensor([0.0, 100.0, 200.0])
    z = r / 0.01
    assert torch.softmax(z, 0)[2] == 1.0
    torch.testing.assert_close(log_one_minus_softmax(z)[2], torch.tensor(-10000.0))
    torch.testing.assert_close(relaxed_topk_mask(r, 2, 0.01), torch.tensor([0.0, 1.0, 1.0]))
    floored = r + torch.log((1 - torch.softmax(z, 0)).clamp_min(torch.finfo(torch.float32).tiny))
    assert torch.softmax(floored / 0.01, 0).argmax() == 2
    scores = r.clone().requires_grad_()
    relaxed_topk_rounds(scores, 2, 0.01)[1].mul(torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert torch.isfinite(scores.grad).all()


@pytest.mark.parametrize("temperature", [10.0, 1.0, 0.3, 0.1, 0.03, 0.01])
def test_floored_rounds_are_the_unfloored_recursion_to_its_own_precision(temperature: float) -> None:
    # Scores as a trained run perturbs them (ISOLET's D and K): at low T most entries of r / T lie
    # hundreds of units below their row's largest, which the floors raise to 60 below it.
    torch.manual_seed(0)
    log_alpha = 3 * torch.randn(617, dtype=torch.float64)
    scores = (log_alpha + sample_gumbel((32, 617), log_alpha)).requires_grad_()
    spread = scores.detach() / temperature
    if temperature <= 0.1:  # the floors are at work from the first round on
        assert (spread.amax(-1) - spread.amin(-1)).min() > 60
    reference = relaxed_topk_rounds_reference(scores, 50, temperature)
    floored = relaxed_topk_rounds(scores, 50, temperature)
    # Float32, as training runs: the floored rounds are as far from the float64 recursion as the
    # unfloored ones computed in float32 are. At T <= 0.03 fifty rounds amplify float32's rounding
    # to order 1 either way; the floors add nothing measurable to that.
    error = (relaxed_topk_rounds(scores.float(), 50, temperature).double() - reference).abs().max()
    error_unfloored = (relaxed_topk_rounds_reference(scores.float(), 50, temperature).double() - reference).abs().max()
    assert error <= 1.5 * error_unfloored + 1e-6
    weights = torch.rand(617, dtype=torch.float64)
    (grad,) = torch.autograd.grad(floored.sum(-2).mul(weights).sum(), scores)
    assert torch.isfinite(grad).all()
    if temperature >= 0.03:  # float64, where the recursion is still well within its precision
        torch.testing.assert_close(floored, reference, atol=1e-9, rtol=0)
        (grad_reference,) = torch.autograd.grad(reference.sum(-2).mul(weights).sum(), scores)
        torch.testing.assert_close(grad, grad_reference, atol=1e-9 * grad_reference.abs().max().item(), rtol=0)


@pytest.mark.parametrize("temperature", [10.0, 1.0, 0.1, 0.01])
def test_relaxed_topk_mask_sums_to_k_and_rounds_are_distributions(temperature: float) -> None:
    torch.manual_seed(0)
    scores = 2 * torch.randn(64, 30, dtype=torch.float64)
    rounds = relaxed_topk_rounds(scores, 5, temperature)
    assert rounds.shape == (64, 5, 30)
    assert ((rounds >= 0) & (rounds <= 1)).all()
    torch.testing.assert_close(rounds.sum(-1), torch.ones(64, 5, dtype=torch.float64))
    mask = rounds.sum(-2)
    assert (mask >= 0).all()
    torch.testing.assert_close(mask.sum(-1), torch.full((64,), 5.0, dtype=torch.float64))


def test_relaxed_topk_mask_tends_to_the_hard_topk_mask() -> None:
    torch.manual_seed(1)
    # Distinct scores at least 0.05 apart: at T = 1e-3 the margins are 50 / T-units.
    scores = torch.randperm(40).double() * 0.05 + 0.01 * torch.rand(40, dtype=torch.float64)
    hard = topk_mask(scores, 7)
    assert hard.sum() == 7 and set(hard.nonzero().squeeze(1).tolist()) == set(scores.topk(7).indices.tolist())
    torch.testing.assert_close(relaxed_topk_mask(scores, 7, 1e-3), hard, atol=1e-9, rtol=0)
    assert (relaxed_topk_mask(scores, 7, 1e-3) <= 1 + 1e-9).all()


@pytest.mark.parametrize("parameterisation", ["direct", "indirect"])
@pytest.mark.parametrize("noise", ["per_example", "per_batch"])
def test_topk_training_forward_is_x_times_a_relaxed_k_hot_mask(parameterisation: str, noise: str) -> None:
    torch.manual_seed(0)
    selector = GumbelTopKSelector(20, 4, parameterisation=parameterisation, noise=noise).train()
    assert isinstance(selector, TemperatureControlled) and selector.out_features == 20
    selector.set_temperature(0.5)
    x = torch.ones(8, 20)
    out = selector(x)  # with x = 1 the output is the mask itself
    assert out.shape == (8, 20) and (out >= 0).all()
    torch.testing.assert_close(out.sum(1), torch.full((8,), 4.0))
    assert torch.equal(out, out[:1].expand_as(out)) == (noise == "per_batch")
    selector(torch.rand(8, 20)).square().sum().backward()
    grads = [p.grad for p in selector.parameters()]
    assert all(g is not None and torch.isfinite(g).all() and g.abs().sum() > 0 for g in grads)


def test_topk_evaluation_is_exactly_k_distinct_features() -> None:
    selector = GumbelTopKSelector(8, 3).eval()
    with torch.no_grad():
        selector.log_alpha.copy_(torch.tensor([0.1, 2.0, -1.0, 5.0, 0.3, 3.0, 0.0, 0.2]))
    assert selector.selected_indices().tolist() == [3, 5, 1]  # decreasing log_alpha
    x = torch.arange(16.0).reshape(2, 8) + 1
    expected = x * torch.tensor([0, 1, 0, 1, 0, 1, 0, 0.0])
    assert torch.equal(selector(x), expected)
    gathered = GumbelTopKSelector(8, 3, output="gathered").eval()
    with torch.no_grad():
        gathered.log_alpha.copy_(selector.log_alpha)
    assert gathered.out_features == 3
    assert torch.equal(gathered(x), x[:, [3, 5, 1]])


def test_topk_low_temperature_training_sample_is_the_hard_selection() -> None:
    # Margins of 100 dwarf the Gumbel noise: at T = 0.01 the training sample is the top-k mask.
    for output in ("masked", "gathered"):
        selector = GumbelTopKSelector(6, 2, output=output).train()
        with torch.no_grad():
            selector.log_alpha.copy_(torch.tensor([0.0, 100, 0, 0, 0, 200]))
        selector.set_temperature(0.01)
        x = torch.rand(5, 6)
        expected = x * torch.tensor([0, 1, 0, 0, 0, 1.0]) if output == "masked" else x[:, [5, 1]]
        torch.testing.assert_close(selector(x), expected)


def test_topk_initialisation_and_indirect_parameterisation() -> None:
    torch.manual_seed(0)
    direct = GumbelTopKSelector(50, 5)
    assert direct.log_alpha.shape == (50,) and (direct.log_alpha >= 0).all()
    assert direct.log_alpha.sum().item() == pytest.approx(1.0)  # one row of CAE's reference init
    indirect = GumbelTopKSelector(50, 5, parameterisation="indirect")
    assert indirect.embedding.shape == (1, 50) and indirect.projection.weight.shape == (50, 50)
    expected = indirect.embedding[0] @ indirect.projection.weight.T + indirect.projection.bias
    torch.testing.assert_close(indirect.logits(), expected)
    assert GumbelTopKSelector(50, 5, parameterisation="indirect", embedding_dim=8).embedding.shape == (1, 8)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"output": "all"}, r"model\.selector\.output='all'"),
        ({"parameterisation": "implicit"}, r"model\.selector\.parameterisation='implicit'"),
        ({"noise": "sometimes"}, r"model\.selector\.noise='sometimes'"),
        ({"embedding_dim": 8}, r"model\.selector\.embedding_dim=8 needs model\.selector\.parameterisation=indirect"),
        ({"parameterisation": "indirect", "embedding_dim": 0}, r"model\.selector\.embedding_dim=0"),
    ],
)
def test_topk_bad_values_are_config_errors(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        GumbelTopKSelector(10, 2, **kwargs)


# -- SAND (Pad, Hammoud et al. 2025) ----------------------------------------------------------------


def test_sand_gains_meet_the_budget_exactly() -> None:
    torch.manual_seed(0)
    selector = SANDSelector(77, 10)
    # The reference's initialisation: every gain sqrt(K / D), so sum a^2 = K from the start.
    torch.testing.assert_close(selector.gains(), torch.full((77,), math.sqrt(10 / 77)))
    w = torch.randn(77)
    assert normalised_gains(w, 10).square().sum().item() == pytest.approx(10.0, rel=1e-6)
    assert normalised_gains(w, 10, norm=1.0).sum().item() == pytest.approx(10.0, rel=1e-6)
    assert normalised_gains(w, 10, norm=3.0).abs().pow(3).sum().item() == pytest.approx(10.0, rel=1e-6)
    # |w| is clipped at 1 before normalising: w = (3, -1, 0.5, 0.5), K = 2 -> c = (1, 1, .5, .5), sum c^2 = 2.5.
    expected = torch.tensor([1.0, 1.0, 0.5, 0.5]) * math.sqrt(2 / 2.5)
    torch.testing.assert_close(normalised_gains(torch.tensor([3.0, -1.0, 0.5, 0.5]), 2), expected)


def test_sand_evaluation_keeps_exactly_k_gains() -> None:
    selector = SANDSelector(6, 2).eval()
    with torch.no_grad():
        selector.w.copy_(torch.tensor([0.2, 0.9, 0.1, 1.0, 0.3, 0.05]))
    assert selector.out_features == 6
    assert selector.selected_indices().tolist() == [3, 1]
    gains = selector.selected_gains()
    assert (gains != 0).sum() == 2 and gains[[3, 1]].gt(0).all()
    # The two kept gains (1, 0.9) renormalised to sum a^2 = 2, as the reference's evaluation does.
    torch.testing.assert_close(gains[[3, 1]], torch.tensor([1.0, 0.9]) * math.sqrt(2 / 1.81))
    x = torch.rand(4, 6)
    torch.testing.assert_close(selector(x), x * gains)
    assert torch.equal(selector(x), selector(x))  # no noise at evaluation


def test_sand_training_adds_noise_where_gains_are_below_one() -> None:
    torch.manual_seed(0)
    selector = SANDSelector(4, 2, sigma=1.5).train()
    with torch.no_grad():
        selector.w.copy_(torch.tensor([1.0, 1.0, 0.0, 0.0]))
    x = torch.rand(20000, 4)
    out = selector(x)
    torch.testing.assert_close(out[:, :2], x[:, :2])  # gain 1: the feature, undistorted
    assert out[:, 2:].mean().abs() < 0.05 and abs(out[:, 2:].std().item() - 1.5) < 0.03  # gain 0: pure N(0, 1.5^2)
    out.sum().backward()
    assert selector.w.grad is not None and torch.isfinite(selector.w.grad).all()


def test_sand_training_step_projects_w_onto_the_budget() -> None:
    selector = SANDSelector(5, 2).train()
    with torch.no_grad():
        selector.w.copy_(torch.tensor([0.5, -0.5, 0.2, 0.1, 0.0]))
    expected = normalised_gains(selector.w.detach().clone(), 2)
    selector(torch.rand(3, 5))
    torch.testing.assert_close(selector.w.detach(), expected)
    assert selector.w.detach().square().sum().item() == pytest.approx(2.0, rel=1e-6)


def test_sand_without_noise_and_bad_values() -> None:
    selector = SANDSelector(5, 2, sigma=0.0).train()
    x = torch.rand(3, 5)
    torch.testing.assert_close(selector(x), x * selector.gains())
    with pytest.raises(ConfigError, match=r"model\.selector\.sigma=-1"):
        SANDSelector(5, 2, sigma=-1)
    with pytest.raises(ConfigError, match=r"model\.selector\.norm=0"):
        SANDSelector(5, 2, norm=0)


# -- Sequential Attention (Yasuda et al. 2023) ------------------------------------------------------


def test_phase_boundaries_exact() -> None:
    assert phase_boundaries(100, 3, 0.1, 1.0) == [40, 70, 100]
    assert phase_boundaries(100, 3, 0.1, 0.7) == [30, 50, 70]
    assert phase_boundaries(123, 10, 0.1, 1.0) == [23, 34, 45, 56, 67, 78, 89, 100, 111, 123]
    with pytest.raises(ConfigError, match=r"at least K=10 optimiser steps.*leave 9"):
        phase_boundaries(10, 10, 0.1, 1.0)


def run_phases(selector: SequentialAttentionSelector, steps: int, preference: torch.Tensor, x: torch.Tensor) -> list:
    """``steps`` training passes with the logits pinned to ``preference``; the number selected after each."""
    counts = []
    for _ in range(steps):
        with torch.no_grad():
            selector.logits.copy_(preference)
        selector(x)
        counts.append(len(selector.order))
    return counts


def test_sequential_attention_greedy_schedule_is_exact() -> None:
    torch.manual_seed(0)
    selector = SequentialAttentionSelector(6, 3, start_fraction=0.1, stop_fraction=1.0).train()
    assert isinstance(selector, StepScheduled) and selector.out_features == 6
    selector.set_total_steps(100)
    preference = torch.tensor([0.0, 2.0, 0.0, 0.0, 3.0, 1.0])  # 4, then 1, then 5
    counts = run_phases(selector, 100, preference, torch.rand(4, 6))
    # Feature j joins before step b_j (0-based) is taken: steps 40 and 70; the last at step 100, i.e.
    # when the selector is next used after training.
    assert counts[39] == 0 and counts[40] == 1 and counts[69] == 1 and counts[70] == 2 and counts[99] == 2
    selector.eval()
    assert selector.selected_indices().tolist() == [4, 1, 5]
    assert selector.joined_at == [40, 70, 100] and selector.selection_complete
    x = torch.rand(3, 6)
    assert torch.equal(selector(x), x * torch.tensor([0, 1, 0, 0, 1, 1.0]))
    # After each selection the logits go back to their initial values (the reference's reset).
    torch.testing.assert_close(selector.logits.detach(), selector.initial_logits)


def test_sequential_attention_inputs_in_each_stage() -> None:
    torch.manual_seed(0)
    selector = SequentialAttentionSelector(5, 2, start_fraction=0.2, stop_fraction=0.6, reset_logits=False).train()
    selector.set_total_steps(10)  # warm-up steps 0-1; phases end after steps 4 and 6; then K features only
    assert phase_boundaries(10, 2, 0.2, 0.6) == [4, 6]
    logits = torch.tensor([0.5, -1.0, 2.0, 0.0, 1.0])
    with torch.no_grad():
        selector.logits.copy_(logits)
    x = torch.rand(3, 5)
    assert torch.equal(selector(x), x) and torch.equal(selector(x), x)  # warm-up: all features, weight 1
    torch.testing.assert_close(selector(x), x * torch.softmax(logits, 0))  # phase 0: s = 0
    selector(x), selector(x)
    out = selector(x)  # step 4: feature 2 has joined
    assert selector.order == [2]
    expected_w = torch.softmax(logits.masked_fill(torch.tensor([0, 0, 1, 0, 0]).bool(), float("-inf")), 0)
    torch.testing.assert_close(out, x * (torch.tensor([0, 0, 1, 0, 0.0]) + expected_w))
    selector(x)
    out = selector(x)  # step 6: feature 4 has joined, selection complete: x * s
    assert selector.order == [2, 4] and selector.joined_at == [4, 6]
    assert torch.equal(out, x * torch.tensor([0, 0, 1, 0, 1.0]))


def test_sequential_attention_provisional_selection_and_checkpoint_state() -> None:
    torch.manual_seed(0)
    selector = SequentialAttentionSelector(6, 3).train()
    selector.set_total_steps(100)
    preference = torch.tensor([0.0, 2.0, 0.0, 0.0, 3.0, 1.0])
    run_phases(selector, 50, preference, torch.rand(2, 6))
    assert selector.order == [4] and not selector.selection_complete
    with torch.no_grad():
        selector.logits.copy_(preference)
    indices = selector.selected_indices()
    assert indices.tolist() == [4, 1, 5] and len(set(indices.tolist())) == 3  # 4 joined, 1 and 5 provisional
    probabilities = selector.selected_probabilities()
    assert probabilities[0] == 1 and (probabilities[1:] < 1).all()
    # The schedule (step count, order) travels with the state dict, so checkpoints restore it.
    restored = SequentialAttentionSelector(6, 3)
    restored.load_state_dict(selector.state_dict())
    assert (restored.step, restored.total_steps, restored.order, restored.joined_at) == (50, 100, [4], [40])
    assert torch.equal(restored.selected_mask, selector.selected_mask)


def test_sequential_attention_needs_its_step_count() -> None:
    selector = SequentialAttentionSelector(6, 3).train()
    with pytest.raises(ConfigError, match="TrainingSteps"):
        selector(torch.rand(2, 6))
    with pytest.raises(ConfigError, match=r"start_fraction=0\.5 and stop_fraction=0\.5"):
        SequentialAttentionSelector(6, 3, start_fraction=0.5, stop_fraction=0.5)


def test_optimiser_steps_per_epoch_counts_mini_batches_not_groups() -> None:
    x, y = torch.rand(648, 3), torch.zeros(648, dtype=torch.long)
    assert optimiser_steps_per_epoch(IndexBatches(x, y, 16, drop_last=True, group=32)) == 40
    assert optimiser_steps_per_epoch(IndexBatches(x[:650], y[:650], 16, group=32)) == 41
    assert optimiser_steps_per_epoch([1, 2, 3]) == 3


def test_complete_selection_checkpoint_skips_incomplete_epochs() -> None:
    class Module:
        selector = SequentialAttentionSelector(6, 3)

    module = Module()
    module.selector.set_total_steps(100)
    checkpoint = CompleteSelectionCheckpoint(monitor="val/loss")
    assert not checkpoint._complete(module)  # type: ignore[arg-type]
    module.selector.step = 100
    assert checkpoint._complete(module)  # type: ignore[arg-type]
    assert TrainingSteps().complete_selection_checkpoint


# -- command line -----------------------------------------------------------------------------------


def run_train(tmp_path: Path, *overrides: str) -> dict:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "src" / "train.py"), f"hydra.run.dir={tmp_path}", "logger=none", "threads=1",
         *overrides],
        capture_output=True, text=True, cwd=ROOT, env={**os.environ, "WANDB_MODE": "offline"}, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((tmp_path / "results.json").read_text())


@pytest.mark.parametrize(
    ("model", "selector", "retrained"),
    [
        ("topk", "GumbelTopKSelector", True),
        ("ipcae_topk", "GumbelTopKSelector", True),
        ("sand", "SANDSelector", True),
        ("seqattn", "SequentialAttentionSelector", True),
        ("ipcae_gjsd", "IndirectSelector", False),
    ],
)
def test_cli_run_selects_k_distinct_features(tmp_path: Path, model: str, selector: str, retrained: bool) -> None:
    results = run_train(tmp_path, f"model={model}", "trainer.max_epochs=3")
    assert results["model"] == model and results["selector"] == selector
    assert len(results["selected_indices"]) == 10 and len(set(results["selected_indices"])) == 10
    assert results["unique_pct"] == 100.0
    assert ("retrained" in results) == retrained
    config = results["config"]["model"]["selector"]
    if model == "ipcae_topk":
        assert config["parameterisation"] == "indirect"
    if model == "ipcae_gjsd":
        assert config["diversity_weight"] > 0
    if model == "seqattn":  # the checkpoint is the one epoch whose selection is complete
        assert results["best_epoch"] == 2


def test_seqattn_paper_protocol_on_mice_protein(tmp_path: Path, real_data_dir: Path) -> None:
    results = run_train(
        tmp_path, "experiment=paper/mice_protein_classification", "model=seqattn", "trainer.max_epochs=2",
        f"paths.data_dir={real_data_dir}",
    )  # fmt: skip
    assert results["dataset"] == "mice_protein" and len(set(results["selected_indices"])) == 10
    assert set(results["retrained"]) == {"accuracy", "loss", "val_loss"}
