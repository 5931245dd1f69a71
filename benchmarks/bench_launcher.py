"""A sweep run sequentially against the same sweep on the parallel (joblib) launcher preset.

    python benchmarks/bench_launcher.py --jobs 4

Both sweeps go through the real CLI (`src/train.py -m ...`) on the digits data; wall time includes
everything a user waits for.
"""

from __future__ import annotations

import argparse
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


def sweep(extra: list[str], seeds: str, epochs: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        command = [
            sys.executable, str(ROOT / "src" / "train.py"), "-m", f"seed={seeds}", "model=ipcae,cae",
            f"trainer.max_epochs={epochs}", "logger=none", f"hydra.sweep.dir={tmp}", *extra,
        ]  # fmt: skip
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, cwd=ROOT, env=os.environ)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "launcher.json")
    args = parser.parse_args()
    jobs = 2 * len(args.seeds.split(","))
    sequential = sweep([], args.seeds, args.epochs)
    parallel = sweep(["launcher=parallel", f"hydra.launcher.n_jobs={args.n_jobs}"], args.seeds, args.epochs)
    report = {
        "versions": versions(),
        "cpu_count": os.cpu_count(),
        "jobs": jobs,
        "epochs": args.epochs,
        "sequential_seconds": sequential,
        "parallel_seconds": parallel,
        "parallel_n_jobs": args.n_jobs,
        "speedup": sequential / parallel,
        "command": " ".join(sys.argv),
    }
    write_json_atomic(args.out, report)
    print(f"{jobs} jobs: sequential {sequential:.1f} s, parallel {parallel:.1f} s, speedup {sequential / parallel:.2f}")


if __name__ == "__main__":
    main()
