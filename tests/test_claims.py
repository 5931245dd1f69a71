"""The method's headline behaviour on full 200-epoch runs (slow: a few minutes on two cores)."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from ipcae.results import cpu_model

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def sweep(tmp_path: Path, *overrides: str, env: dict[str, str] | None = None) -> list[dict]:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "src" / "train.py"), "-m", "logger=none", f"hydra.sweep.dir={tmp_path}",
         *overrides],
        capture_output=True, text=True, cwd=ROOT, env={**os.environ, **(env or {})}, timeout=1800,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return [json.loads(p.read_text()) for p in sorted(tmp_path.glob("*/results.json"))]


def test_digits_ipcae_keeps_every_feature_and_cae_duplicates(tmp_path: Path) -> None:
    runs = sweep(tmp_path, "model=ipcae,cae", "seed=0,1,2")
    ipcae = [r for r in runs if r["model"] == "ipcae"]
    cae = [r for r in runs if r["model"] == "cae"]
    assert len(ipcae) == len(cae) == 3
    for r in ipcae:
        assert r["test"]["accuracy"] >= 0.88, r["seed"]
        assert r["unique_pct"] == 100.0, r["seed"]
    assert any(r["unique_pct"] < 100.0 for r in cae)


def test_mice_protein_ipcae_accuracy(tmp_path: Path, real_data_dir: Path) -> None:
    runs = sweep(tmp_path, "model=ipcae", "data=mice_protein", "seed=0,1,2", env={"IPCAE_DATA_DIR": str(real_data_dir)})
    assert statistics.mean(r["test"]["accuracy"] for r in runs) >= 0.90


@pytest.mark.parametrize("model", ["ipcae", "cae"])
def test_committed_paper_cell_reproduces(tmp_path: Path, real_data_dir: Path, model: str) -> None:
    """Re-running a committed cell of results/paper with its seed gives exactly its selection and test metrics."""
    # The preset's own run: variants of it (the variant search's candidates) share the folder.
    (committed,) = [
        r
        for path in sorted((ROOT / "results/paper/mice_protein/classification" / model).glob("seed0-*/results.json"))
        for r in [json.loads(path.read_text())]
        if not r.get("overrides")
    ]
    # CPU kernels round differently across CPU families, and 200 epochs carry a last-bit difference
    # into the selection, so exact equality holds on the CPU the cell was made on. Cells from before
    # results.json named its CPU hold none; this one is compared anyway, and a failure names both.
    made_on = committed.get("machine", {}).get("cpu")
    if made_on is not None and made_on != cpu_model():
        pytest.skip(f"the committed cell was made on {made_on}; this machine is {cpu_model()}")
    where = f"committed on {made_on or 'a CPU it does not record'}, rerun on {cpu_model()}"
    (rerun,) = sweep(
        tmp_path, "experiment=paper/mice_protein_classification", f"model={model}", "seed=0", "retrain=false",
        f"threads={committed['config']['threads']}",
        env={"IPCAE_DATA_DIR": str(real_data_dir)},
    )  # fmt: skip
    assert rerun["selected_indices"] == committed["selected_indices"], where
    assert rerun["test"] == committed["test"], where
    # The same model settings; keys added to the config since are at values that change nothing.
    added = {"optimizer": {"_target_": "torch.optim.Adam", "_partial_": True}}
    neutral = {"max_noise_elements": None, "max_map_gib": 2.0}
    model = {k: v for k, v in rerun["config"]["model"].items() if added.get(k) != v}
    model["selector"] = {k: v for k, v in model["selector"].items() if neutral.get(k, object()) != v}
    assert model == committed["config"]["model"]
