"""The high-dimensional benchmark through its command line, on a small D."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "bench_highdim.py"


def bench(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--n-train", "400", "--n-val", "100", "--n-test", "100", *args],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600,
    )  # fmt: skip


def bench_records(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess, list[dict]]:
    """Run the benchmark into a fresh file; its exit status must be 0; the records it appended."""
    out = tmp_path / "bench.jsonl"
    done = bench(tmp_path, *args, "--out", str(out))
    assert done.returncode == 0, done.stderr[-2000:]
    return done, [json.loads(line) for line in out.read_text().splitlines()]


def test_every_case_appends_its_record_with_the_per_epoch_recovery(tmp_path: Path) -> None:
    done, records = bench_records(
        tmp_path, "--layout", "sparse", "--d", "300", "--epochs", "3", "--methods", "ipcae_per_batch,stg"
    )
    # Each case's progress is echoed as it comes (a case at D = 10^6 takes an hour).
    assert done.stderr.count("EPOCH_FOUND") == done.stderr.count("EPOCH_SECONDS") == 6
    assert [(r["method"], r["d"], r["status"]) for r in records] == [("ipcae_per_batch", 300, "ok"), ("stg", 300, "ok")]
    for r in records:
        truth = r["informative_indices"]
        assert len(truth) == len(set(truth)) == 10 and all(0 <= i < 300 for i in truth)
        assert r["informative_found"] == len(set(r["selected_indices"]) & set(truth))
        # One count and one validation loss per epoch; the case reports the selection of the epoch with the
        # lowest validation loss (the paper protocol) and the last epoch's beside it.
        found, losses = r["informative_found_per_epoch"], r["val_loss_per_epoch"]
        assert len(found) == len(losses) == len(r["epoch_seconds"]) == 3
        assert r["checkpoint"] == "best" and r["best_epoch"] == losses.index(min(losses)) + 1
        assert r["informative_found"] == found[r["best_epoch"] - 1]
        assert r["informative_found_last"] == found[-1]
        assert len(r["selected_indices"]) == 50 and r["peak_rss_mb"] > r["data_rss_mb"] * 0.5
        assert r["layout"] == "sparse" and r["density"] == 0.01 and r["machine"]["cores"] >= 1


def test_checkpoint_last_reports_the_selection_after_the_last_epoch(tmp_path: Path) -> None:
    _, (r,) = bench_records(
        tmp_path, "--d", "300", "--epochs", "2", "--methods", "cae_per_batch", "--checkpoint", "last"
    )
    assert r["checkpoint"] == "last" and r["best_epoch"] is None and len(r["val_loss_per_epoch"]) == 2
    assert r["lr_schedule"] == "constant" and r["lr_per_epoch"] == [1e-3, 1e-3]
    assert r["informative_found"] == r["informative_found_last"] == r["informative_found_per_epoch"][-1]


def test_cosine_schedule_decays_the_learning_rate_once_per_epoch(tmp_path: Path) -> None:
    _, (r,) = bench_records(
        tmp_path, "--d", "300", "--epochs", "4", "--methods", "ipcae_per_batch", "--lr-schedule", "cosine"
    )
    # lr_e = lr (1 + cos(pi e / E)) / 2 for the epochs e = 0 .. E - 1 (conf/model/scheduler/cosine.yaml).
    assert r["lr_schedule"] == "cosine"
    assert r["lr_per_epoch"] == pytest.approx([1e-3, 8.5355339e-4, 5e-4, 1.4644661e-4])


def test_adam_eps_is_the_optimisers_own_and_recorded(tmp_path: Path) -> None:
    _, (default,) = bench_records(tmp_path, "--d", "300", "--epochs", "1", "--methods", "ipcae_per_batch")
    assert default["adam_eps"] == default["optimizer_eps"] == 1e-8  # torch's default, the paper's Adam
    (tmp_path / "bench.jsonl").unlink()
    _, (raised,) = bench_records(
        tmp_path, "--d", "300", "--epochs", "1", "--methods", "ipcae_per_batch", "--adam-eps", "1e-6"
    )
    assert raised["adam_eps"] == raised["optimizer_eps"] == 1e-6


def test_a_case_over_its_time_limit_keeps_the_epochs_it_finished(tmp_path: Path) -> None:
    _, (record,) = bench_records(
        tmp_path, "--d", "2000", "--epochs", "100000", "--methods", "ipcae_per_batch", "--time-limit", "12"
    )
    assert record["status"] == "timeout" and record["time_limit_s"] == 12
    done_epochs = record["epochs_done"]
    assert done_epochs == len(record["epoch_seconds"]) == len(record["informative_found_per_epoch"]) >= 1
    assert len(record["val_loss_per_epoch"]) == done_epochs and all(v > 0 for v in record["val_loss_per_epoch"])


def test_an_unknown_method_is_one_error_line_and_no_record(tmp_path: Path) -> None:
    out = tmp_path / "bench.jsonl"
    done = bench(tmp_path, "--d", "300", "--methods", "ipcae_per_row", "--out", str(out))
    assert done.returncode != 0
    assert done.stderr.strip().splitlines()[-1].startswith("error: --methods 'ipcae_per_row' is unknown")
    assert not out.exists()


def test_stopping_the_benchmark_stops_the_case_it_runs(tmp_path: Path) -> None:
    # Each case is a subprocess; a benchmark stopped by SIGTERM must not leave it training on unseen.
    out = tmp_path / "bench.jsonl"
    command = [sys.executable, str(SCRIPT), "--n-train", "400", "--d", "300", "--epochs", "100000", "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=env)
    try:
        for line in proc.stderr:  # the case has started training once its first epoch is reported
            if line.startswith("EPOCH_SECONDS"):
                break
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        assert len(children) == 1
        proc.terminate()
        assert proc.wait(timeout=60) != 0
    finally:
        proc.kill()
    case = Path(f"/proc/{children[0]}")
    assert not case.exists() or "State:\tZ" in (case / "status").read_text()
    assert not out.exists() or out.read_text() == ""
