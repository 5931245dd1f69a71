"""docs/highdim.md is what scripts/highdim_report.py makes of the committed results, to the character."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _report_module():
    spec = importlib.util.spec_from_file_location("highdim_report", ROOT / "scripts" / "highdim_report.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_page_is_generated_from_the_committed_results(tmp_path: Path) -> None:
    module = _report_module()
    out = tmp_path / "highdim.md"
    text = module.build(
        ROOT / "benchmarks" / "results" / "highdim.jsonl",
        ROOT / "results" / "highdim",
        out,
        tmp_path / "figures" / "highdim_scaling.png",
    )
    assert text == (ROOT / "docs" / "highdim.md").read_text()
    assert (tmp_path / "figures" / "highdim_scaling.png").stat().st_size > 10_000
    # Every benchmark case appears as a row, and the real suite's datasets as theirs.
    cases = [line for line in (ROOT / "benchmarks" / "results" / "highdim.jsonl").read_text().splitlines() if line]
    assert text.count("| sparse |") + text.count("| dense |") >= len(
        module.load_bench(ROOT / "benchmarks" / "results" / "highdim.jsonl")
    )
    assert len(cases) >= 1 and "| ALLAML | 7,129 |" in text
    # Cases measured on different machines: the page names every CPU, not only the latest case's.
    machines_line = next(line for line in text.splitlines() if line.startswith("Machines: "))
    for cpu in {json.loads(case)["machine"]["cpu"] for case in cases}:
        assert cpu in machines_line, cpu


def test_time_slope_per_series_uses_median_epochs_and_reports_the_load(tmp_path: Path) -> None:
    """Each setting's series gets its own slope; an epoch slowed by another job does not move it."""
    module = _report_module()
    base = {"layout": "sparse", "method": "ipcae_per_batch", "status": "ok", "embedding_dim": 64, "batch_size": 128}
    lines = []
    for d in (10_000, 100_000, 1_000_000):
        seconds = d / 10_000
        # Quiet series, 3 epochs: time exactly linear in D, one epoch slowed 5x (the median ignores it).
        lines.append(
            {
                **base,
                "d": d,
                "epochs": 3,
                "epoch_seconds": [seconds, 5 * seconds, seconds],
                "seconds_per_epoch": 7 * seconds / 3,
                "mean_load_1min": 1.0 + d / 10**7,
            }
        )
        # An older series without load records: time quadratic in D.
        lines.append({**base, "d": d, "epochs": 20, "epoch_seconds": [seconds**2], "seconds_per_epoch": seconds**2})
    # Two widths only: no series.
    for d in (10_000, 100_000):
        lines.append(
            {**base, "d": d, "epochs": 5, "embedding_dim": 16, "epoch_seconds": [1.0], "seconds_per_epoch": 1.0}
        )
    path = tmp_path / "bench.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    series = {s["epochs"]: s for s in module.slopes(module.load_bench(path), "sparse", "ipcae_per_batch")}
    assert sorted(series) == [3, 20]
    assert series[3]["slope"] == pytest.approx(1.0) and series[3]["max_load"] == pytest.approx(1.1)
    assert series[20]["slope"] == pytest.approx(2.0) and series[20]["max_load"] is None
    assert series[3]["dims"] == [10_000, 100_000, 1_000_000]


def test_seeds_diversity_weights_and_schedules_are_cases_of_their_own(tmp_path: Path) -> None:
    """A case run again with another training seed, GJSD lambda, final temperature or learning-rate schedule
    is a new row, not a replacement; a rerun of the same case replaces the earlier line."""
    module = _report_module()
    base = {"layout": "sparse", "method": "ipcae_per_batch", "status": "ok", "embedding_dim": 64, "batch_size": 128,
            "d": 100_000, "epochs": 20, "epoch_seconds": [1.0], "seconds_per_epoch": 1.0}  # fmt: skip
    lines = [
        {**base, "informative_found": 5},  # an older record: no seed or lambda field (seed 0, no GJSD term)
        {**base, "seed": 0, "diversity_weight": 0.0, "informative_found": 6},  # the same case again
        {**base, "seed": 1, "diversity_weight": 0.0, "informative_found": 7},
        {**base, "seed": 0, "diversity_weight": 1.0, "informative_found": 8},
        {**base, "seed": 0, "diversity_weight": 0.0, "temperature_end": 0.3, "informative_found": 9},
        {**base, "seed": 0, "diversity_weight": 0.0, "lr_schedule": "cosine", "informative_found": 10},
        {**base, "seed": 0, "lr_schedule": "cosine", "adam_eps": 1e-7, "informative_found": 4},
    ]
    path = tmp_path / "bench.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    frame = module.load_bench(path)
    found = zip(
        frame.seed,
        frame.diversity_weight,
        frame.temperature_end,
        frame.lr_schedule,
        frame.adam_eps,
        frame.informative_found,
        strict=True,
    )
    assert sorted(found) == [
        (0, 0.0, 0.01, "constant", 1e-8, 6),
        (0, 0.0, 0.01, "cosine", 1e-8, 10),
        (0, 0.0, 0.01, "cosine", 1e-7, 4),
        (0, 0.0, 0.3, "constant", 1e-8, 9),
        (0, 1.0, 0.01, "constant", 1e-8, 8),
        (1, 0.0, 0.01, "constant", 1e-8, 7),
    ]
    rows = [line for line in module.bench_table(frame) if line.startswith("| sparse")]
    assert [row.split(" | ")[5:9] for row in rows] == [
        ["0.001", "10 → 0.01", "0", "0"],
        ["0.001", "10 → 0.01", "0", "1"],
        ["0.001", "10 → 0.01", "1", "0"],
        ["0.001", "10 → 0.3", "0", "0"],
        ["0.001, cosine", "10 → 0.01", "0", "0"],
        ["0.001, cosine, eps 1e-07", "10 → 0.01", "0", "0"],
    ]


def test_recovery_by_epoch_lists_only_the_cases_that_recorded_it(tmp_path: Path) -> None:
    module = _report_module()
    base = {"layout": "sparse", "method": "ipcae_per_batch", "status": "ok", "embedding_dim": 64, "batch_size": 128,
            "d": 1_000_000, "epochs": 3, "epoch_seconds": [1.0, 1.0, 1.0], "seconds_per_epoch": 1.0,
            "peak_rss_mb": 3000.0, "test_accuracy": 0.8}  # fmt: skip
    lines = [
        {**base, "seed": 0, "informative_found": 7},  # recorded before the trace existed
        {**base, "seed": 1, "diversity_weight": 0.3, "informative_found": 8, "informative_found_per_epoch": [0, 5, 8]},
        {
            **base,
            "seed": 2,
            "informative_found": 8,
            "informative_found_last": 3,
            "checkpoint": "best",
            "informative_found_per_epoch": [8, 8, 3],
            "best_epoch": 2,
            "val_loss_per_epoch": [0.6, 0.5, 0.7],
        },
    ]
    path = tmp_path / "bench.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    rows = [line for line in module.recovery_table(module.load_bench(path)) if line.startswith("| sparse")]
    assert rows == [
        "| sparse | ipcae_per_batch | 1,000,000 | 64 | 0.001 | 10 → 0.01 | 0 | 2 | 8 8 3 "
        "| lowest val. loss (epoch 2) |",
        "| sparse | ipcae_per_batch | 1,000,000 | 64 | 0.001 | 10 → 0.01 | 0.3 | 1 | 0 5 8 | last epoch |",
    ]
    # The targets name the epoch the reported selection comes from, and the last epoch's count beside it.
    frame = module.load_bench(path).assign(epochs=20)  # the targets are read from 20-epoch cases
    (best,) = [line for line in module.criteria(frame) if "epoch 2" in line]
    assert "8 of 10 informative features selected (target >= 8) at the lowest val. loss (epoch 2) (3 after" in best
    assert module.recovery_table(module.load_bench(path).drop(columns="informative_found_per_epoch")) == []
