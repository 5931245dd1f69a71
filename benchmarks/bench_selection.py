"""Time the relaxed per-example selection, forward + backward: textbook formula vs the fast path.

    .venv/bin/python benchmarks/bench_selection.py [--threads N] [--repeats R] [--out PATH]

Both implementations are timed interleaved (textbook, fast, textbook, ...) so that a burst of
load from elsewhere on the machine hits both alike; the table reports medians.
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

from ipcae import gumbel  # noqa: E402
from ipcae.gumbel import relaxed_select, relaxed_select_reference, sample_gumbel  # noqa: E402
from ipcae.results import cpu_model  # noqa: E402

# (name, B, K, D): the reference's batch size and K for each dataset.
SIZES = [("mnist", 128, 50, 784), ("mice", 16, 10, 77)]
MORE_SIZES = [("isolet", 128, 50, 617), ("coil20", 16, 50, 1024), ("har", 128, 50, 561)]


def textbook_select(x: torch.Tensor, log_alpha: torch.Tensor, temperature: torch.Tensor) -> torch.Tensor:
    """The implementation this project started from: rand -> -log(-log u) -> softmax -> bmm."""
    u = torch.rand((x.shape[0], *log_alpha.shape), dtype=log_alpha.dtype)
    tiny = torch.finfo(log_alpha.dtype).tiny
    g = -torch.log(-torch.log(u.clamp_min(tiny)))
    return relaxed_select_reference(x, log_alpha, temperature, g)


def fast_select(x: torch.Tensor, log_alpha: torch.Tensor, temperature: torch.Tensor) -> torch.Tensor:
    gumbel.set_compiled(False)
    return relaxed_select(x, log_alpha, temperature, "per_example")


def compiled_select(x: torch.Tensor, log_alpha: torch.Tensor, temperature: torch.Tensor) -> torch.Tensor:
    gumbel.set_compiled(True)
    try:
        return relaxed_select(x, log_alpha, temperature, "per_example")
    finally:
        gumbel.set_compiled(False)


def noise_only(x: torch.Tensor, log_alpha: torch.Tensor, temperature: torch.Tensor) -> torch.Tensor:
    return sample_gumbel((x.shape[0], *log_alpha.shape), log_alpha)


def step(select: Callable, x: torch.Tensor, log_alpha: torch.Tensor, temperature: torch.Tensor) -> None:
    out = select(x, log_alpha, temperature)
    # A weighted sum, so that the incoming gradient is not constant (as it is in training).
    (out * x[:, : out.shape[1]]).sum().backward()
    log_alpha.grad = None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--threads", type=int, default=os.cpu_count(), help="torch.set_num_threads (default: all cores)"
    )
    parser.add_argument("--repeats", type=int, default=60, help="timed repetitions per implementation and size")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--compiled", action="store_true", help="also time the optional torch.compile'd kernels")
    parser.add_argument("--all-sizes", action="store_true", help="also ISOLET, COIL-20 and HAR sizes")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "selection.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    # Other processes on the machine make parallel regions wait for their second thread: the
    # load average is recorded with the numbers.
    load_before = os.getloadavg()
    torch.manual_seed(0)
    impls = {"textbook": textbook_select, "fast": fast_select}
    if args.compiled:
        impls["compiled"] = compiled_select
    results = []
    for name, b, k, d in SIZES + (MORE_SIZES if args.all_sizes else []):
        x = torch.rand(b, d)
        log_alpha = torch.randn(k, d, requires_grad=True)
        temperature = torch.tensor(args.temperature)
        times: dict[str, list[float]] = {key: [] for key in impls}
        compile_s = None
        if args.compiled:
            # The first call compiles (forward and backward); timed on its own.
            start = time.perf_counter()
            step(compiled_select, x, log_alpha, temperature)
            compile_s = time.perf_counter() - start
        for _ in range(args.warmup):
            for select in impls.values():
                step(select, x, log_alpha, temperature)
        for _ in range(args.repeats):
            for key, select in impls.items():
                start = time.perf_counter()
                step(select, x, log_alpha, temperature)
                times[key].append((time.perf_counter() - start) * 1e3)
        noise_ms = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            noise_only(x, log_alpha, temperature)
            noise_ms.append((time.perf_counter() - start) * 1e3)
        row = {
            "size": name,
            "B": b,
            "K": k,
            "D": d,
            "textbook_ms": statistics.median(times["textbook"]),
            "fast_ms": statistics.median(times["fast"]),
            "fast_noise_only_ms": statistics.median(noise_ms),
            "textbook_ms_min": min(times["textbook"]),
            "fast_ms_min": min(times["fast"]),
            "textbook_ms_quartiles": statistics.quantiles(times["textbook"], n=4),
            "fast_ms_quartiles": statistics.quantiles(times["fast"], n=4),
        }
        row["speedup"] = row["textbook_ms"] / row["fast_ms"]
        if args.compiled:
            row["compiled_ms"] = statistics.median(times["compiled"])
            row["compiled_speedup"] = row["textbook_ms"] / row["compiled_ms"]
            row["compile_s"] = compile_s
        results.append(row)

    print(f"forward+backward, median of {args.repeats}, {args.threads} thread(s), T={args.temperature}")
    header = f"{'size':<7} {'B x K x D':>12} {'textbook ms':>12} {'fast ms':>9} {'speedup':>8} {'(noise ms)':>11}"
    if args.compiled:
        header += f" {'compiled ms':>12} {'speedup':>8} {'compile s':>10}"
    print(header)
    for r in results:
        shape = f"{r['B']}x{r['K']}x{r['D']}"
        line = (
            f"{r['size']:<7} {shape:>12} {r['textbook_ms']:>12.3f} {r['fast_ms']:>9.3f} "
            f"{r['speedup']:>7.2f}x {r['fast_noise_only_ms']:>11.3f}"
        )
        if args.compiled:
            line += f" {r['compiled_ms']:>12.3f} {r['compiled_speedup']:>7.2f}x {r['compile_s']:>10.1f}"
        print(line)
    report = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": {
            "cpu": cpu_model(),
            "cores": os.cpu_count(),
            "platform": platform.platform(),
            "processor": platform.processor(),
        },
        "versions": {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__},
        "threads": args.threads,
        "repeats": args.repeats,
        "warmup": args.warmup,
        "temperature": args.temperature,
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
