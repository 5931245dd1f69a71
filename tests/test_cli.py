"""End-to-end runs through the real command line: src/train.py and src/eval.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ipcae.results import cpu_model

ROOT = Path(__file__).resolve().parents[1]
RESULT_KEYS = {
    "model", "selector", "dataset", "task", "k", "seed", "selected_indices", "selected_features",
    "unique_pct", "test", "best_epoch", "epochs", "n_train", "n_val", "n_test", "n_features",
    "n_classes", "train_seconds", "epoch_seconds", "config", "versions", "machine",
}  # fmt: skip


def run(script: str, *overrides: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "src" / script), *overrides],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "WANDB_MODE": "offline", **(env or {})},
        timeout=300,
    )


def train(tmp_path: Path, *overrides: str, env: dict[str, str] | None = None) -> dict:
    proc = run("train.py", f"hydra.run.dir={tmp_path}", *overrides, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((tmp_path / "results.json").read_text())


def test_train_digits_writes_results(tmp_path: Path) -> None:
    results = train(tmp_path, "trainer.max_epochs=3")
    assert set(results) >= RESULT_KEYS
    assert results["model"] == "ipcae" and results["selector"] == "IndirectSelector"
    assert (results["dataset"], results["task"], results["k"], results["seed"]) == ("digits", "classification", 10, 0)
    assert (results["n_train"], results["n_val"], results["n_test"]) == (1078, 359, 360)
    assert (results["n_features"], results["n_classes"]) == (64, 10)
    assert len(results["selected_indices"]) == 10
    assert results["selected_features"] == [f"px_{i // 8}_{i % 8}" for i in results["selected_indices"]]
    assert results["unique_pct"] == 100 * len(set(results["selected_indices"])) / 10
    assert set(results["test"]) == {"accuracy", "loss"} and 0 <= results["test"]["accuracy"] <= 1
    assert results["epochs"] == 3 and 0 <= results["best_epoch"] < 3 and len(results["epoch_seconds"]) == 3
    assert results["config"]["model"]["name"] == "ipcae"
    # Results are compared across machines: no absolute directories of this one.
    text = (tmp_path / "results.json").read_text()
    assert str(tmp_path) not in text and str(ROOT) not in text
    assert results["config"]["paths"]["output_dir"] == "<output_dir>"
    assert set(results["versions"]) == {"python", "torch", "lightning", "ipcae"}
    # The CPU, because a run reproduces bit for bit only on the CPU family it was made on.
    assert results["machine"]["cpu"] == cpu_model() and results["machine"]["cores"] == os.cpu_count()
    # Per-epoch log with the diagnostics the method asks for.
    header = (tmp_path / "metrics.csv").read_text().splitlines()[0].split(",")
    for column in ("train/unique_pct", "val/unique_pct", "train/temperature", "train/max_prob", "train/gjsd",
                   "train/loss", "val/loss", "val/accuracy"):  # fmt: skip
        assert column in header, column
    assert list((tmp_path / "checkpoints").glob("*.ckpt"))


def test_same_seed_same_selection_and_metrics(tmp_path: Path) -> None:
    overrides = ("model=cae", "trainer.max_epochs=2", "logger=none", "seed=3")
    first = train(tmp_path / "a", *overrides)
    second = train(tmp_path / "b", *overrides)
    assert first["selected_indices"] == second["selected_indices"]
    assert first["test"] == second["test"]


def test_reconstruction_task(tmp_path: Path) -> None:
    results = train(tmp_path, "task=reconstruction", "model=cae", "model/decoder=linear", "trainer.max_epochs=2")
    assert results["task"] == "reconstruction" and results["n_classes"] is None
    assert set(results["test"]) == {"mse", "loss"}
    assert results["test"]["mse"] == pytest.approx(results["test"]["loss"], rel=1e-5)


def test_mice_protein_run(tmp_path: Path, real_data_dir: Path) -> None:
    results = train(
        tmp_path, "data=mice_protein", "model=gjsd", "trainer.max_epochs=2", env={"IPCAE_DATA_DIR": str(real_data_dir)}
    )
    assert (results["n_train"], results["n_val"], results["n_test"]) == (648, 216, 216)
    assert (results["n_features"], results["n_classes"], results["k"]) == (77, 8, 10)
    assert results["selected_features"][0].endswith("_N")
    assert results["config"]["data"]["batch_size"] == 16


def test_multirun(tmp_path: Path) -> None:
    proc = run(
        "train.py", "-m", "model=cae,ipcae", "seed=0,1", "trainer.max_epochs=1", "logger=none",
        f"hydra.sweep.dir={tmp_path}",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = [json.loads(p.read_text()) for p in sorted(tmp_path.glob("*/results.json"))]
    assert sorted((r["model"], r["seed"]) for r in runs) == [("cae", 0), ("cae", 1), ("ipcae", 0), ("ipcae", 1)]


def test_wandb_offline_run(tmp_path: Path) -> None:
    env = {"WANDB_MODE": "", "WANDB_API_KEY": "", "HOME": str(tmp_path), "NETRC": str(tmp_path / "none")}
    env = {k: v for k, v in env.items() if v} | {"WANDB_DIR": str(tmp_path)}
    clean = {k: v for k, v in os.environ.items() if k not in ("WANDB_MODE", "WANDB_API_KEY")}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "src" / "train.py"), f"hydra.run.dir={tmp_path}", "logger=wandb",
         "trainer.max_epochs=1"],
        capture_output=True, text=True, cwd=ROOT, env={**clean, **env}, stdin=subprocess.DEVNULL, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "results.json").is_file()
    offline_runs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(offline_runs) == 1
    assert any(offline_runs[0].glob("*.wandb"))


def test_eval_reproduces_the_test_metrics(tmp_path: Path) -> None:
    trained = train(tmp_path / "train", "trainer.max_epochs=2", "logger=none")
    (ckpt,) = (tmp_path / "train" / "checkpoints").glob("epoch*.ckpt")  # the best one, beside last.ckpt
    proc = run("eval.py", f"ckpt_path={ckpt}", f"hydra.run.dir={tmp_path / 'eval'}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    evaluated = json.loads((tmp_path / "eval" / "results.json").read_text())
    assert evaluated["selected_indices"] == trained["selected_indices"]
    assert evaluated["test"]["accuracy"] == pytest.approx(trained["test"]["accuracy"])
    assert evaluated["best_epoch"] == trained["best_epoch"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model.k=0"], "model.k=0 is out of range"),
        (["model.k=65"], "1 <= model.k <= 64"),
        (["model=transformer"], "transformer"),
        (["data=cifar"], "cifar"),
        (["task=segmentation"], "segmentation"),
        (["model.selector.noise=sometimes"], "per_example"),
    ],
)
def test_bad_input_is_one_clear_line(tmp_path: Path, overrides: list[str], message: str) -> None:
    proc = run("train.py", f"hydra.run.dir={tmp_path}", "trainer.max_epochs=1", *overrides)
    assert proc.returncode != 0
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "results.json").exists()


def test_missing_data_file_is_one_clear_line(tmp_path: Path) -> None:
    proc = run(
        "train.py", f"hydra.run.dir={tmp_path / 'run'}", "data=mice_protein",
        env={"IPCAE_DATA_DIR": str(tmp_path / "empty"), "IPCAE_DATA_MIRROR": "http://127.0.0.1:9/"},
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Data_Cortex_Nuclear.xls" in lines[0]
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "run" / "results.json").exists()


def test_eval_without_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    proc = run("eval.py", f"ckpt_path={tmp_path / 'missing.ckpt'}", f"hydra.run.dir={tmp_path}")
    assert proc.returncode == 2
    assert "ckpt_path=" in proc.stderr and "Traceback" not in proc.stderr


def test_failed_job_does_not_stop_the_sweep(tmp_path: Path) -> None:
    proc = run(
        "train.py", "-m", "model.k=100,5", "trainer.max_epochs=1", "logger=none", f"hydra.sweep.dir={tmp_path}",
    )  # fmt: skip
    assert proc.returncode == 1
    assert "1 job(s) of the sweep failed" in proc.stderr
    failure = json.loads((tmp_path / "0" / "failed.json").read_text())
    assert "model.k=100" in failure["error"]
    assert json.loads((tmp_path / "1" / "results.json").read_text())["k"] == 5


def test_store_skips_finished_runs(tmp_path: Path) -> None:
    store = tmp_path / "store"
    common = ("trainer.max_epochs=2", f"store_dir={store}")
    first = train(tmp_path / "a", *common)
    (stored,) = store.glob("digits/classification/ipcae/seed0-*/results.json")
    assert json.loads(stored.read_text())["test"] == first["test"]
    epochs = (stored.parent / "epochs.csv").read_text().splitlines()
    assert len(epochs) == 3 and "val/unique_pct" in epochs[0]
    proc = run("train.py", f"hydra.run.dir={tmp_path / 'b'}", *common)
    assert proc.returncode == 0 and "already finished" in proc.stdout
    assert not (tmp_path / "b" / "metrics.csv").exists()
    # A different configuration is a different entry.
    train(tmp_path / "c", "trainer.max_epochs=2", f"store_dir={store}", "seed=1")
    assert len(list(store.glob("digits/classification/ipcae/*/results.json"))) == 2


@pytest.mark.slow  # starts two processes
def test_ddp_on_two_cpu_processes(tmp_path: Path) -> None:
    results = train(tmp_path, "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2", "trainer.max_epochs=2")
    # Each rank evaluates its shard; the synchronised metrics cover the whole test set.
    assert results["n_test"] == 360 and 0 <= results["test"]["accuracy"] <= 1
    assert len(results["selected_indices"]) == 10
