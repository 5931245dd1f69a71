"""GPU throughput: one run on one GPU, DDP over the GPUs, and many runs per GPU in parallel.

    python benchmarks/bench_gpu.py                         # all cases, paper protocol on Mice Protein
    python benchmarks/bench_gpu.py --dataset mnist --epochs 20 --per-gpu 1 4 8
    python benchmarks/make_performance_doc.py              # then regenerate docs/performance.md

Every run goes through the real CLI (``src/train.py experiment=paper/<dataset>_classification``,
the paper protocol with the retrained decoder) and must finish with a results.json. Cases:

- ``gpu``: ``trainer=gpu``, one run at a time: seconds per run.
- ``ddp``: ``trainer=ddp`` over all visible GPUs (or ``--ddp-devices``), one run: seconds per run.
- ``per_gpu_<n>``: n runs at once on each GPU (``CUDA_VISIBLE_DEVICES`` per process, 1 CPU thread
  each): the models are tiny, so one run leaves most of a GPU idle and throughput comes from
  running several. Reported as paper-protocol runs per hour for the whole machine.

With ``--epochs`` below 200 the per-hour figure is scaled to 200 epochs from the measured epoch
time and the fixed start-up cost (both recorded). Results go to ``benchmarks/results/gpu.json``.
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

PAPER_EPOCHS = 200


def gpu_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def command(dataset: str, model: str, epochs: int, run_dir: Path, extra: list[str]) -> list[str]:
    return [
        sys.executable, str(ROOT / "src" / "train.py"), f"experiment=paper/{dataset}_classification",
        f"model={model}", f"trainer.max_epochs={epochs}", f"hydra.run.dir={run_dir}", "logger=csv",
        "~callbacks.progress_bar", "plots=false", *extra,
    ]  # fmt: skip


def launch(commands: list[tuple[list[str], dict[str, str]]], timeout: float) -> tuple[float, list[dict]]:
    """Start all commands at once, wait for all; (wall seconds, their results.json)."""
    start = time.perf_counter()
    procs = [
        subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for cmd, env in commands
    ]
    errors = []
    for proc in procs:
        _, stderr = proc.communicate(timeout=timeout)
        if proc.returncode:
            errors.append(stderr.decode(errors="replace")[-2000:])
    wall = time.perf_counter() - start
    if errors:
        raise RuntimeError(f"{len(errors)} run(s) failed; the last said:\n{errors[-1]}")
    results = []
    for cmd, _ in commands:
        run_dir = Path(next(a.split("=", 1)[1] for a in cmd if a.startswith("hydra.run.dir=")))
        results.append(json.loads((run_dir / "results.json").read_text()))
    return wall, results


def summary(name: str, wall: float, results: list[dict], gpus_used: int, epochs: int) -> dict:
    fit = [r["train_seconds"] for r in results]
    per_epoch = sum(fit) / len(fit) / epochs
    # Start-up, data loading, test and retraining: what a run costs besides its epochs.
    overhead = max(wall - max(fit), 0.0)
    # The same batch of concurrent runs at the paper's 200 epochs, at the measured epoch time.
    scaled_wall = overhead + per_epoch * PAPER_EPOCHS
    runs = len(results)
    return {
        "case": name,
        "runs": runs,
        "gpus_used": gpus_used,
        "epochs": epochs,
        "wall_seconds": round(wall, 2),
        "fit_seconds_mean": round(sum(fit) / runs, 3),
        "seconds_per_epoch": round(per_epoch, 5),
        "test_accuracy_mean": round(sum(r["test"]["accuracy"] for r in results) / runs, 4),
        "world_size": results[0].get("world_size"),
        "measured_runs_per_hour": round(3600 * runs / wall, 1),
        "paper_runs_per_hour": round(3600 * runs / (wall if epochs == PAPER_EPOCHS else scaled_wall), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="mice_protein")
    parser.add_argument("--model", default="ipcae")
    parser.add_argument("--epochs", type=int, default=PAPER_EPOCHS)
    parser.add_argument("--per-gpu", type=int, nargs="+", default=[1, 4, 8], help="parallel runs per GPU")
    parser.add_argument("--ddp-devices", type=int, default=None, help="default: all visible GPUs")
    parser.add_argument("--cases", nargs="+", default=["gpu", "ddp", "per_gpu"])
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "gpu.json")
    args = parser.parse_args()
    gpus = gpu_count()
    if gpus == 0:
        raise SystemExit("no CUDA device visible: this benchmark measures GPUs")
    import torch

    report: dict = {
        "versions": versions(),
        "gpu": torch.cuda.get_device_name(0),
        "gpu_count": gpus,
        "cpu_count": os.cpu_count(),
        "dataset": args.dataset,
        "model": args.model,
        "command": " ".join(sys.argv),
        "cases": [],
    }
    with tempfile.TemporaryDirectory(prefix="bench-gpu-") as tmp:
        root = Path(tmp)
        if "gpu" in args.cases:
            cmd = command(args.dataset, args.model, args.epochs, root / "gpu", ["trainer=gpu", "threads=1"])
            wall, results = launch([(cmd, {})], args.timeout)
            report["cases"].append(summary("gpu", wall, results, 1, args.epochs))
            print(report["cases"][-1], flush=True)
        if "ddp" in args.cases:
            devices = args.ddp_devices or gpus
            cmd = command(
                args.dataset, args.model, args.epochs, root / "ddp",
                ["trainer=ddp", "trainer.accelerator=gpu", f"trainer.devices={devices}", "threads=1"],
            )  # fmt: skip
            wall, results = launch([(cmd, {})], args.timeout)
            report["cases"].append(summary(f"ddp_{devices}", wall, results, devices, args.epochs))
            print(report["cases"][-1], flush=True)
        if "per_gpu" in args.cases:
            for n in args.per_gpu:
                commands = []
                for gpu in range(gpus):
                    for i in range(n):
                        run_dir = root / f"per_gpu_{n}" / f"{gpu}_{i}"
                        extra = ["trainer=gpu", "threads=1", f"seed={i}"]
                        cmd = command(args.dataset, args.model, args.epochs, run_dir, extra)
                        commands.append((cmd, {"CUDA_VISIBLE_DEVICES": str(gpu)}))
                wall, results = launch(commands, args.timeout)
                report["cases"].append(summary(f"per_gpu_{n}", wall, results, gpus, args.epochs))
                print(report["cases"][-1], flush=True)
    write_json_atomic(args.out, report)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
