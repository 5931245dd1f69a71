"""Time the relaxed top-k rounds (model=topk / ipcae_topk), forward + backward, across the temperature schedule.

    .venv/bin/python benchmarks/bench_topk.py [--threads N] [--repeats R] [--out PATH]

Against the formulation the selector used before, which took log(1 - a) of the round's largest entry as
logsumexp(others) - logsumexp(all) with torch.logsumexp and the others' log1p(-a) from exp(log_softmax):
both are the same formula, but torch.exp on CPU is far slower where its result underflows, and as the
temperature falls most of a round does. Both are timed interleaved so that load from elsewhere hits
both alike; the table reports medians and the load average.
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

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from ipcae.atomic import write_text_atomic  # noqa: E402
from ipcae.selectors.subset import relaxed_topk_rounds  # noqa: E402

# (name, B, K, D): the paper protocol's batch size and K per dataset.
SIZES = [("mnist", 128, 50, 784), ("coil20", 16, 50, 1024), ("mice", 16, 10, 77)]
TEMPERATURES = [10.0, 1.0, 0.1, 0.01]


def logsumexp_rounds(scores: torch.Tensor, k: int, temperature: float) -> torch.Tensor:
    """The earlier formulation, kept here only to be timed against."""

    def log_one_minus_softmax(z: torch.Tensor) -> torch.Tensor:
        log_a = torch.log_softmax(z, dim=-1)
        top = z.argmax(dim=-1, keepdim=True)
        others = torch.logsumexp(z.scatter(-1, top, float("-inf")), dim=-1, keepdim=True)
        at_top = others - torch.logsumexp(z, dim=-1, keepdim=True)
        rest = log_a.exp().scatter(-1, top, 0.0)
        return torch.log1p(-rest).scatter(-1, top, at_top)

    rounds, r = [], scores
    for j in range(k):
        z = r / temperature
        rounds.append(torch.softmax(z, dim=-1))
        if j < k - 1:
            r = r + log_one_minus_softmax(z)
    return torch.stack(rounds, dim=-2)


def step(rounds: Callable, logits: torch.Tensor, noise: torch.Tensor, x: torch.Tensor, k: int, t: float) -> float:
    logits.grad = None
    started = time.perf_counter()
    mask = rounds(logits + noise, k, t).sum(dim=-2)
    (x * mask).sum().backward()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "topk.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    results = []
    for name, b, k, d in SIZES:
        for t in TEMPERATURES:
            generator = torch.Generator().manual_seed(0)
            logits = torch.randn(d, generator=generator).requires_grad_()
            noise = -torch.log(-torch.log(torch.rand(b, d, generator=generator)))
            x = torch.randn(b, d, generator=generator)
            times: dict[str, list[float]] = {"before": [], "now": []}
            for i in range(args.warmup + args.repeats):
                for label, fn in (("before", logsumexp_rounds), ("now", relaxed_topk_rounds)):
                    seconds = step(fn, logits, noise, x, k, t)
                    if i >= args.warmup:
                        times[label].append(seconds)
            before, now = (1000 * statistics.median(times[key]) for key in ("before", "now"))
            results.append(
                {"size": name, "B": b, "K": k, "D": d, "temperature": t, "before_ms": before, "now_ms": now,
                 "speedup": before / now}
            )  # fmt: skip
            print(f"{name} B={b} K={k} D={d} T={t:g}: before {before:.1f} ms, now {now:.1f} ms", flush=True)
    cpu = platform.processor() or platform.machine()
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    record = {
        "command": "python benchmarks/bench_topk.py" + "".join(f" {a}" for a in sys.argv[1:]),
        "machine": {"cpu": cpu, "cores": os.cpu_count(), "platform": platform.platform()},
        "versions": {"python": platform.python_version(), "torch": torch.__version__},
        "threads": args.threads,
        "repeats": args.repeats,
        "warmup": args.warmup,
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "results": results,
    }
    write_text_atomic(args.out, json.dumps(record, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
