"""results/faithfulness/README.md is what scripts/faithfulness.py makes of the runs beside it."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _module():
    spec = importlib.util.spec_from_file_location("faithfulness", ROOT / "scripts" / "faithfulness.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_page_is_generated_from_the_committed_runs() -> None:
    module = _module()
    assert (
        module.report(ROOT / "results" / "faithfulness")
        == (ROOT / "results" / "faithfulness" / "README.md").read_text()
    )


def _run(model: str, dataset: str, seed: int, k: int, epochs: int, hidden: list[int], joint: float, retrained: float):
    return {
        "model": model,
        "dataset": dataset,
        "seed": seed,
        "unique_pct": 100.0,
        "n_train": 648,
        "n_val": 216,
        "n_test": 216,
        "test": {"accuracy": joint},
        "retrained": {"accuracy": retrained},
        "config": {"data": {"k": k, "batch_size": 64}, "trainer": {"max_epochs": epochs},
                   "model": {"decoder": {"hidden_sizes": hidden}}},
    }  # fmt: skip


def test_a_check_counts_only_runs_with_every_override(tmp_path: Path) -> None:
    """A SAND run under the IP-CAE protocol (200 epochs, K = 10, hidden 200) is not the SAND-settings check."""
    module = _module()
    runs = [
        _run("sand", "mice_protein", 0, 10, 400, [25], 0.90, 0.95),
        _run("sand", "mice_protein", 1, 10, 400, [25], 0.80, 0.85),
        _run("sand", "mice_protein", 2, 10, 200, [200], 0.10, 0.10),
        _run("seqattn", "mice_protein", 0, 10, 400, [25], 0.10, 0.10),
    ]
    for i, run in enumerate(runs):
        (tmp_path / f"run{i}").mkdir()
        (tmp_path / f"run{i}" / "results.json").write_text(json.dumps(run))
    (tmp_path / "run9").mkdir()
    (tmp_path / "run9" / "running.json").write_text("{}")
    text = module.report(tmp_path)
    sand = text.split("## SAND")[1].split("## ")[0]
    assert "| ours, retrained decoder on the K features | 90.00 ± 7.07 (n = 2) |" in sand
    assert "| ours, joint decoder | 85.00 ± 7.07 (n = 2) |" in sand
    assert "Seeds run: 0, 1;" in sand
    assert "| ours, joint decoder | not run |" in text.split("## Sequential Attention, MNIST")[1]
