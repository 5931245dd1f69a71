"""Per-example against per-batch Gumbel noise: accuracy and training time over seeds.

    python benchmarks/bench_noise.py --datasets digits mice_protein --seeds 0 1 2

Each cell is a full run through the real CLI (`src/train.py`, 200 epochs by default); the JSON keeps
every run's test accuracy, Unique Percentage and fit time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from ipcae.atomic import write_json_atomic  # noqa: E402
from ipcae.results import versions  # noqa: E402

PRESETS = {"mice_protein": "experiment=paper/mice_protein_classification", "digits": "data=digits"}


def run(dataset: str, noise: str, seed: int, extra: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        command = [
            sys.executable, str(ROOT / "src" / "train.py"), PRESETS.get(dataset, f"data={dataset}"),
            "model=ipcae", f"model.selector.noise={noise}", f"seed={seed}", "logger=none", "retrain=false",
            f"hydra.run.dir={tmp}", *extra,
        ]  # fmt: skip
        subprocess.run(command, check=True, capture_output=True, cwd=ROOT, env=os.environ)
        results = json.loads((Path(tmp) / "results.json").read_text())
    return {
        "seed": seed,
        "accuracy": results["test"]["accuracy"],
        "unique_pct": results["unique_pct"],
        "train_seconds": results["train_seconds"],
        "median_epoch_seconds": statistics.median(results["epoch_seconds"][1:]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["digits", "mice_protein"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "noise.json")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    report = {"versions": versions(), "command": " ".join(sys.argv), "cells": {}}
    for dataset in args.datasets:
        for noise in ("per_example", "per_batch"):
            runs = [run(dataset, noise, seed, args.overrides) for seed in args.seeds]
            accuracy = [r["accuracy"] for r in runs]
            report["cells"][f"{dataset}/{noise}"] = {
                "accuracy_mean": statistics.mean(accuracy),
                "accuracy_std": statistics.stdev(accuracy) if len(accuracy) > 1 else 0.0,
                "median_epoch_seconds": statistics.median(r["median_epoch_seconds"] for r in runs),
                "train_seconds_mean": statistics.mean(r["train_seconds"] for r in runs),
                "runs": runs,
            }
            print(dataset, noise, report["cells"][f"{dataset}/{noise}"]["accuracy_mean"], flush=True)
            write_json_atomic(args.out, report)


if __name__ == "__main__":
    main()
