"""Time the relaxed top-k rounds (model=topk, ipcae_topk), forward + backward, against the temperature.

    .venv/bin/python benchmarks/bench_topk.py [--threads N] [--repeats R] [--out PATH]

The floored rounds (``relaxed_topk_rounds``) and the same recursion without the floors
(``relaxed_topk_rounds_reference``) are timed interleaved, so that a burst of load from elsewhere on
the machine hits both alike; the table reports medians. The temperatures span the annealing of a paper
run (10 -> 0.01): at low T most entries of r / T lie far below their row's largest, where torch's CPU
exp and log1p slow down unless the entries are floored.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from ipcae.atomic import write_text_atomic  # noqa: E402
from ipcae.gumbel import sample_gumbel  # noqa: E402
from ipcae.selectors.subset import relaxed_topk_rounds, relaxed_topk_rounds_reference  # noqa: E402

sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_selection import cpu_model  # noqa: E402

# (name, B, K, D): the paper protocol's batch size and K for each dataset.
SIZES = [("isolet", 128, 50, 617), ("coil20", 16, 50, 1024), ("mnist", 128, 50, 784)]
TEMPERATURES = [10.0, 1.0, 0.3, 0.1, 0.03, 0.01]


def step(rounds: Callable, log_alpha: torch.Tensor, noise: torch.Tensor, k: int, temperature: float) -> None:
    mask = rounds(log_alpha + noise, k, temperature).sum(dim=-2)
    # A weighted sum, so that the incoming gradient is not constant (as it is in training).
    (mask * noise).sum().backward()
    log_alpha.grad = None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (a sweep's default: 1)")
    parser.add_argument("--repeats", type=int, default=15, help="timed repetitions per implementation and cell")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "topk.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    impls = {"reference": relaxed_topk_rounds_reference, "floored": relaxed_topk_rounds}
    results = []
    for name, b, k, d in SIZES:
        torch.manual_seed(0)
        # Logits as a trained run has them (spread over a few units), perturbed per example.
        log_alpha = (3 * torch.randn(d)).requires_grad_()
        noise = sample_gumbel((b, d), log_alpha.detach())
        for temperature in TEMPERATURES:
            times: dict[str, list[float]] = {key: [] for key in impls}
            for rounds in impls.values():  # warm-up
                step(rounds, log_alpha, noise, k, temperature)
            for _ in range(args.repeats):
                for key, rounds in impls.items():
                    start = time.perf_counter()
                    step(rounds, log_alpha, noise, k, temperature)
                    times[key].append((time.perf_counter() - start) * 1e3)
            row = {"size": name, "B": b, "K": k, "D": d, "temperature": temperature}
            row.update({f"{key}_ms": statistics.median(values) for key, values in times.items()})
            row["speedup"] = row["reference_ms"] / row["floored_ms"]
            results.append(row)
            print(
                f"{name:<7} {b}x{k}x{d:<5} T={temperature:<5g} reference {row['reference_ms']:8.1f} ms  "
                f"floored {row['floored_ms']:8.1f} ms  {row['speedup']:.2f}x",
                flush=True,
            )
    report = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "platform": platform.platform()},
        "versions": {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__},
        "threads": args.threads,
        "repeats": args.repeats,
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.out, json.dumps(report, indent=2) + "\n")
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
