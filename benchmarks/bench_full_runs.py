"""Wall time of whole paper-protocol runs (200 epochs, per-example noise) through the real CLI.

python benchmarks/bench_full_runs.py --cases mnist mice_protein
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from ipcae.atomic import write_json_atomic  # noqa: E402
from ipcae.results import versions  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", nargs="+", default=["mnist", "mice_protein"])
    parser.add_argument("--model", default="ipcae")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "full_runs.json")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    report = {"versions": versions(), "cpu_count": os.cpu_count(), "command": " ".join(sys.argv), "runs": {}}
    for dataset in args.cases:
        with tempfile.TemporaryDirectory() as tmp:
            command = [
                sys.executable, str(ROOT / "src" / "train.py"), f"experiment=paper/{dataset}_classification",
                f"model={args.model}", "retrain=false", "seed=0", f"hydra.run.dir={tmp}", *args.overrides,
            ]  # fmt: skip
            start = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True, cwd=ROOT, env=os.environ)
            wall = time.perf_counter() - start
            results = json.loads((Path(tmp) / "results.json").read_text())
        report["runs"][dataset] = {
            "wall_seconds": wall,
            "train_seconds": results["train_seconds"],
            "epochs": results["epochs"],
            "test_accuracy": results["test"]["accuracy"],
            "model": args.model,
        }
        print(f"{dataset}: {wall:.1f} s wall, {results['train_seconds']:.1f} s fit", flush=True)
        write_json_atomic(args.out, report)


if __name__ == "__main__":
    main()
