"""STG and LassoNet baselines and the retrained-decoder evaluation."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from ipcae.data import Splits
from ipcae.lassonet_baseline import lassonet_ranking
from ipcae.selectors import FixedSelector, STGSelector

ROOT = Path(__file__).resolve().parents[1]


def test_stg_gates_penalty_and_selection() -> None:
    selector = STGSelector(num_features=5, k=2, sigma=0.5, l0_weight=0.1)
    with torch.no_grad():
        selector.mu.copy_(torch.tensor([0.9, -0.2, 0.3, 1.4, 0.0]))
    assert selector.out_features == 5
    assert selector.selected_indices().tolist() == [3, 0]
    # The reference's penalty: lambda * mean_d Phi(mu_d / sigma), the expected fraction of open gates.
    phi = [0.5 * (1 + math.erf(m / 0.5 / math.sqrt(2))) for m in (0.9, -0.2, 0.3, 1.4, 0.0)]
    assert selector.regularization().item() == pytest.approx(0.1 * sum(phi) / 5, rel=1e-5)
    x = torch.ones(3, 5)
    selector.eval()
    torch.testing.assert_close(selector(x), torch.tensor([[0.9, 0.0, 0.3, 1.0, 0.0]]).expand(3, 5))
    torch.testing.assert_close(selector.selected_probabilities(), torch.tensor([1.0, 0.9]))
    assert selector.diagnostics()["open_gates"].item() == pytest.approx(60.0)
    selector.train()
    gated = selector(torch.ones(1000, 5))
    assert gated.min() >= 0 and gated.max() <= 1
    # The reference shares one noise draw across the batch: every row is gated alike.
    assert torch.equal(gated, gated[:1].expand_as(gated))
    per_example = STGSelector(num_features=5, k=2, noise="per_example").train()
    with torch.no_grad():
        per_example.mu.copy_(selector.mu)
    gated = per_example(torch.ones(1000, 5))
    assert not torch.equal(gated, gated[:1].expand_as(gated))
    assert gated[:, 3].mean() > gated[:, 1].mean()  # the gate with the larger mean is open more often


def test_stg_penalty_means_the_same_at_any_width() -> None:
    # One lambda, one meaning: with every gate at the same mean the penalty does not depend on D.
    small, large = STGSelector(77, 10, mu_init_std=0.0), STGSelector(784, 50, mu_init_std=0.0)
    assert small.regularization().item() == pytest.approx(large.regularization().item(), rel=1e-6)
    torch.manual_seed(0)
    mu = STGSelector(1000, 5).mu.detach()
    assert abs(mu.mean().item() - 0.5) < 0.002 and 0.008 < mu.std().item() < 0.012


def test_fixed_selector_selects_the_given_columns_in_both_modes() -> None:
    selector = FixedSelector(num_features=6, k=3, indices=[4, 0, 4])
    x = torch.arange(12.0).reshape(2, 6)
    for mode in (True, False):
        selector.train(mode)
        assert torch.equal(selector(x), x[:, [4, 0, 4]])
    assert selector.selected_indices().tolist() == [4, 0, 4]
    assert list(selector.parameters()) == []


def run_cli(tmp_path: Path, *overrides: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "src" / "train.py"), f"hydra.run.dir={tmp_path}", "logger=none", *overrides],
        capture_output=True, text=True, cwd=ROOT, env={**os.environ, "WANDB_MODE": "offline"}, timeout=600,
    )  # fmt: skip


def run_train(tmp_path: Path, *overrides: str) -> dict:
    proc = run_cli(tmp_path, *overrides)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "retrained decoder" in proc.stdout
    return json.loads((tmp_path / "results.json").read_text())


def test_fixed_selection_on_a_runs_indices_gives_its_retrained_numbers(tmp_path: Path) -> None:
    """model=fixed is the retrained-decoder evaluation from the command line, for any indices."""
    ipcae = run_train(tmp_path / "ipcae", "retrain=true", "trainer.max_epochs=3")
    indices = ipcae["selected_indices"]
    proc = run_cli(
        tmp_path / "fixed", "model=fixed", f"model.selector.indices=[{','.join(map(str, indices))}]",
        "trainer.max_epochs=3",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    fixed = json.loads((tmp_path / "fixed" / "results.json").read_text())
    assert fixed["selected_indices"] == indices
    assert fixed["test"] == {k: v for k, v in ipcae["retrained"].items() if k != "val_loss"}


def test_fixed_selection_without_indices_names_the_missing_value(tmp_path: Path) -> None:
    proc = run_cli(tmp_path, "model=fixed")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        "error: model.selector.indices must be set: add model.selector.indices=<value> to the command line"
    )
    assert not (tmp_path / "results.json").exists()


def test_stg_run_reports_the_retrained_decoder(tmp_path: Path) -> None:
    results = run_train(tmp_path, "model=stg", "trainer.max_epochs=2")
    assert results["model"] == "stg" and results["selector"] == "STGSelector"
    assert len(results["selected_indices"]) == 10 and results["unique_pct"] == 100.0
    assert set(results["retrained"]) == {"accuracy", "loss", "val_loss"}
    assert results["retrained"]["val_loss"] > 0


def test_retrain_switch_adds_a_second_number_for_ipcae(tmp_path: Path) -> None:
    results = run_train(tmp_path, "retrain=true", "trainer.max_epochs=2")
    assert set(results["retrained"]) == {"accuracy", "loss", "val_loss"}
    assert set(results["test"]) == {"accuracy", "loss"}


def test_lassonet_run(tmp_path: Path) -> None:
    pytest.importorskip("lassonet")
    results = run_train(
        tmp_path, "model=lassonet", "trainer.max_epochs=2", "+model.options.n_iters=[10,3]",
        "+model.options.patience=[5,2]", "model.options.path_multiplier=3",
    )  # fmt: skip
    assert results["model"] == "lassonet" and results["selector"] == "LassoNet"
    assert len(set(results["selected_indices"])) == 10
    assert results["test"] == {k: v for k, v in results["retrained"].items() if k != "val_loss"}
    assert results["val"] == {"loss": results["retrained"]["val_loss"]}


def synthetic_splits(seed: int = 0) -> Splits:
    """Two informative columns among twelve: the class is the sign of their sum."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(300, 12, generator=generator)
    y = (x[:, 3] + x[:, 7] > 0).long()
    names = [f"f{i}" for i in range(12)]
    return Splits("synthetic", x[:200], y[:200], x[200:250], y[200:250], x[250:], y[250:], names, 2)


def test_lassonet_path_until_k_keeps_the_full_paths_top_k() -> None:
    lassonet = pytest.importorskip("lassonet")
    # An explicit lambda_start: the automatic one searches for minutes.
    options = {"hidden_dims": (16,), "M": 10, "lambda_start": 100.0, "path_multiplier": 1.1,
               "n_iters": (200, 20), "patience": (20, 5)}  # fmt: skip
    splits = synthetic_splits()
    # The full path, through the package alone: its importances define the ranking.
    reference = lassonet.LassoNetClassifier(random_state=0, torch_seed=0, verbose=0, **options)
    reference.path(
        splits.x_train.numpy(), splits.y_train.numpy(), X_val=splits.x_val.numpy(), y_val=splits.y_val.numpy()
    )
    full = np.argsort(-np.asarray(reference.feature_importances_), kind="stable")
    np.testing.assert_array_equal(lassonet_ranking(splits, "classification", seed=0, **options), full)
    assert set(full[:2].tolist()) == {3, 7}  # the informative columns outlast the rest
    for k in (2, 5):
        truncated = lassonet_ranking(splits, "classification", seed=0, stop_at=k, **options)
        assert set(truncated[:k].tolist()) == set(full[:k].tolist())


def test_lassonet_regression_ranks_by_the_target_not_the_features() -> None:
    """task=regression fits the numeric target: the columns it depends on come first."""
    pytest.importorskip("lassonet")
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.normal(size=(300, 12)).astype(np.float32))
    y = 2 * x[:, 4] - 3 * x[:, 9] + 0.1 * torch.from_numpy(rng.normal(size=300).astype(np.float32))
    names = [f"f{i}" for i in range(12)]
    splits = Splits("synthetic", x[:200], y[:200], x[200:250], y[200:250], x[250:], y[250:], names, 0)
    options = {"hidden_dims": (16,), "M": 10, "lambda_start": 10.0, "path_multiplier": 1.1,
               "n_iters": (200, 20), "patience": (20, 5)}  # fmt: skip
    ranking = lassonet_ranking(splits, "regression", seed=0, stop_at=2, **options)
    assert set(ranking[:2].tolist()) == {4, 9}
