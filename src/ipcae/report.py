"""Aggregate finished runs into one report beside the paper's numbers.

    python -m ipcae.report results/paper [more dirs...] --out docs/results.md --figures docs/figures

Reads every ``results.json`` (and ``failed.json``) below the given directories and writes a CSV of
all runs, a markdown page of mean +- std per method x dataset x task with the paper's values and
the differences, the GJSD lambda chosen on validation, and per-epoch curves of Unique Percentage
and validation accuracy for CAE vs IP-CAE from the runs' ``epochs.csv``.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Iterable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

from ipcae.paper import CLASSIFICATION_ACCURACY, DATASETS, METHODS, RECONSTRUCTION_MSE
from ipcae.results import write_text_atomic

DISPLAY = {
    "mnist": "MNIST", "fashion_mnist": "Fashion", "isolet": "ISOLET", "coil20": "COIL-20",
    "har": "HAR", "mice_protein": "Mice", "digits": "Digits",
    "stg": "STG", "lassonet": "LassoNet", "cae": "CAE", "gjsd": "GJSD", "ipcae": "IP-CAE",
}  # fmt: skip


RETRAINED_ONLY = ("stg", "lassonet")


def load_runs(dirs: Iterable[Path]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One row per finished run, and one per recorded failure (with its error line)."""
    rows, failures = [], []
    for root in dirs:
        for path in sorted(Path(root).rglob("results.json")):
            r = json.loads(path.read_text())
            config = r.get("config", {})
            selector = config.get("model", {}).get("selector", {})
            data = config.get("data", {})
            retrained = r.get("retrained") or {}
            rows.append(
                {
                    "path": str(path.parent),
                    "model": r["model"],
                    "dataset": r["dataset"],
                    "task": r["task"],
                    "seed": r["seed"],
                    "k": r["k"],
                    # The method's own penalty weight: GJSD's diversity reward, STG's L0 penalty.
                    "lambda": selector.get("l0_weight" if r["model"] == "stg" else "diversity_weight"),
                    "accuracy": r["test"].get("accuracy"),
                    "mse": r["test"].get("mse"),
                    "val_loss": (r.get("val") or {}).get("loss"),
                    "unique_pct": r["unique_pct"],
                    "retrained_accuracy": retrained.get("accuracy"),
                    "retrained_mse": retrained.get("mse"),
                    "retrained_val_loss": retrained.get("val_loss"),
                    "best_epoch": r.get("best_epoch"),
                    "epochs": r.get("epochs"),
                    "train_seconds": r.get("train_seconds"),
                    "impute": (data.get("options") or {}).get("impute"),
                    "shuffle": data.get("shuffle"),
                    "noise": selector.get("noise"),
                    "selected_indices": " ".join(map(str, r["selected_indices"])),
                }
            )
        for path in sorted(Path(root).rglob("failed.json")):
            if (path.parent / "results.json").exists():
                continue
            f = json.loads(path.read_text())
            config = f.get("config", {})
            failures.append(
                {
                    "path": str(path.parent),
                    "model": config.get("model", {}).get("name"),
                    "dataset": config.get("data", {}).get("name"),
                    "task": config.get("task", {}).get("name"),
                    "error": f["error"].splitlines()[0],
                }
            )
    return pd.DataFrame(rows), pd.DataFrame(failures, columns=["path", "model", "dataset", "task", "error"])


TUNED = ("gjsd", "stg")


def choose_lambda(runs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Keep, per method x dataset x task, only the runs of the lambda with the lowest mean validation loss.

    The mean is taken over the seeds that every lambda of the cell has run.

    Applies to the methods whose penalty weight is not published (GJSD, STG). For STG the loss is
    the retrained decoder's where recorded.
    """
    tuned = runs[runs.model.isin(TUNED)].copy()
    if tuned.empty:
        return runs, pd.DataFrame()
    # Ranking methods are reported through the retrained decoder on their top K: their lambda is
    # chosen on that decoder's validation loss, not on the joint model's (which sees every feature).
    retrained_val = pd.to_numeric(tuned.retrained_val_loss, errors="coerce")
    ranked = tuned.model.isin(RETRAINED_ONLY) & retrained_val.notna()
    tuned["val_loss"] = pd.to_numeric(tuned.val_loss, errors="coerce").where(~ranked, retrained_val)
    # Lambdas are compared on the seeds every one of them has run (paired), so a sweep that ran one
    # seed per lambda and more seeds only for the winner still ranks them on equal terms. Without a
    # seed in common, each lambda is averaged over its own seeds.
    cells = ["model", "dataset", "task"]
    keys = [*cells, "lambda"]
    lambdas_in_cell = tuned.groupby(cells)["lambda"].transform("nunique")
    shared = tuned.groupby([*cells, "seed"])["lambda"].transform("nunique") == lambdas_in_cell
    counted = shared | ~shared.groupby([tuned[c] for c in cells]).transform("any")
    table = (
        tuned.assign(val_loss=tuned.val_loss.where(counted))
        .groupby(keys, as_index=False)
        .agg(
            val_loss=("val_loss", "mean"),
            accuracy=("accuracy", "mean"),
            retrained_accuracy=("retrained_accuracy", "mean"),
            mse=("mse", "mean"),
            seeds=("seed", "nunique"),
        )
    )
    best = table.loc[table.groupby(cells).val_loss.idxmin()]
    chosen = set(best[keys].itertuples(index=False, name=None))
    keep = ~runs.model.isin(TUNED) | pd.Series(
        [key in chosen for key in runs[keys].itertuples(index=False, name=None)], index=runs.index
    )
    table["chosen"] = [key in chosen for key in table[keys].itertuples(index=False, name=None)]
    return runs[keep], table


def cell(values: pd.Series, scale: float = 1.0, fmt: str = ".2f") -> str:
    values = values.dropna() * scale
    if values.empty:
        return ""
    std = values.std(ddof=1) if len(values) > 1 else 0.0
    return f"{values.mean():{fmt}} ± {std:{fmt}} (n={len(values)})"


def missing_note(failures: pd.DataFrame, dataset: str, task: str, model: str) -> str:
    hits = failures[(failures.dataset == dataset) & (failures.task == task) & (failures.model == model)]
    if hits.empty:
        return "not run"
    # The full error line is listed once per dataset under "Runs that failed"; a table cell only points there.
    return "failed (see below)"


def failure_section(failures: pd.DataFrame) -> list[str]:
    """One line per distinct error: which cells it stopped, and the error itself."""
    if failures.empty:
        return []
    lines = ["## Runs that failed", ""]
    for error, group in failures.groupby("error", sort=False):
        cells = sorted({f"{DISPLAY.get(r.model, r.model)} {r.task}" for r in group.itertuples()})
        datasets = ", ".join(sorted({DISPLAY.get(d, d) for d in group.dataset}))
        runs = f"{len(group)} run{'' if len(group) == 1 else 's'}"
        lines.append(f"- {datasets} ({runs}: {', '.join(cells)}): `{error}`")
    lines.append("")
    return lines


def classification_table(runs: pd.DataFrame, failures: pd.DataFrame, methods: Iterable[str]) -> list[str]:
    lines = [
        "| method | dataset | ours: accuracy % | paper | ours - paper | unique % | retrained accuracy % |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    cls = runs[runs.task == "classification"]
    for method in methods:
        for dataset in DATASETS:
            sel = cls[(cls.model == method) & (cls.dataset == dataset)]
            paper = CLASSIFICATION_ACCURACY.get(method, {}).get(dataset)
            paper_text = f"{paper[0]:.2f} ± {paper[1]:.2f}" if paper else ""
            if sel.empty:
                note = missing_note(failures, dataset, "classification", method)
                lines.append(f"| {DISPLAY[method]} | {DISPLAY[dataset]} | {note} | {paper_text} | | | |")
                continue
            # Ranking methods are only evaluated with a retrained decoder, as in the paper.
            accuracy = sel.retrained_accuracy if method in RETRAINED_ONLY else sel.accuracy
            ours = cell(accuracy, 100)
            diff = f"{100 * accuracy.mean() - paper[0]:+.2f}" if paper else ""
            lines.append(
                f"| {DISPLAY[method]} | {DISPLAY[dataset]} | {ours} | {paper_text} | {diff} | "
                f"{cell(sel.unique_pct, fmt='.0f')} | {cell(sel.retrained_accuracy, 100)} |"
            )
    return lines


def reconstruction_table(runs: pd.DataFrame, failures: pd.DataFrame) -> list[str]:
    lines = [
        "| method | dataset | ours: test MSE | paper | unique % | retrained MSE |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    rec = runs[runs.task == "reconstruction"]
    for method in ("cae", "ipcae"):
        for dataset in DATASETS:
            sel = rec[(rec.model == method) & (rec.dataset == dataset)]
            paper = RECONSTRUCTION_MSE.get(method, {}).get(dataset)
            paper_text = f"{paper:.2e}" if paper else ""
            if sel.empty:
                note = missing_note(failures, dataset, "reconstruction", method)
                lines.append(f"| {DISPLAY[method]} | {DISPLAY[dataset]} | {note} | {paper_text} | | |")
                continue
            mse = sel.mse.dropna()
            std = mse.std(ddof=1) if len(mse) > 1 else 0.0
            lines.append(
                f"| {DISPLAY[method]} | {DISPLAY[dataset]} | {mse.mean():.2e} ± {std:.1e} (n={len(mse)}) | "
                f"{paper_text} | {cell(sel.unique_pct, fmt='.0f')} | {cell(sel.retrained_mse, fmt='.2e')} |"
            )
    return lines


def plot_curves(runs: pd.DataFrame, figures: Path) -> list[Path]:
    """Per dataset: mean over seeds of val/unique_pct and the validation metric per epoch, CAE vs IP-CAE."""
    written = []
    for (dataset, task), group in runs[runs.model.isin(["cae", "ipcae"])].groupby(["dataset", "task"]):
        metric = "val/accuracy" if task == "classification" else "val/mse"
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
        plotted = False
        for model, model_runs in group.groupby("model"):
            curves = [
                pd.read_csv(Path(p) / "epochs.csv") for p in model_runs.path if (Path(p) / "epochs.csv").is_file()
            ]
            if not curves:
                continue
            stacked = pd.concat(curves).groupby("epoch")
            for ax, column in zip(axes, ["val/unique_pct", metric], strict=True):
                if column in curves[0]:
                    mean = stacked[column].mean()
                    ax.plot(mean.index, mean.values, label=f"{DISPLAY[model]} (n={len(curves)})")
                    plotted = True
        if not plotted:
            plt.close(fig)
            continue
        axes[0].set(title=f"{DISPLAY[dataset]} {task}: Unique Percentage", xlabel="epoch", ylabel="%")
        axes[1].set(title=f"{DISPLAY[dataset]} {task}: {metric}", xlabel="epoch")
        if task == "reconstruction":
            axes[1].set_yscale("log")
        for ax in axes:
            if ax.get_legend_handles_labels()[0]:
                ax.legend()
            ax.grid(alpha=0.3)
        fig.tight_layout()
        figures.mkdir(parents=True, exist_ok=True)
        path = figures / f"{dataset}_{task}_curves.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


def build_report(dirs: list[Path], out: Path, figures: Path, csv: Path) -> str:
    runs, failures = load_runs(dirs)
    if runs.empty:
        raise SystemExit(
            f"error: no results.json under {', '.join(map(str, dirs))}: run scripts/reproduce_paper.sh first"
        )
    runs = runs.sort_values(["task", "dataset", "model", "lambda", "seed"], na_position="first")
    csv.parent.mkdir(parents=True, exist_ok=True)
    runs.drop(columns=["path"]).assign(source=[os.path.relpath(p, csv.parent) for p in runs.path]).to_csv(
        csv, index=False
    )
    selected, lambdas = choose_lambda(runs)
    figure_paths = plot_curves(selected, figures)
    present = [m for m in METHODS if m in set(runs.model)] or list(METHODS)
    methods = [m for m in METHODS if m in present or m in ("cae", "gjsd", "ipcae")]
    sources = ", ".join(f"`{d}`" for d in dirs)
    lines = [
        "# Results",
        "",
        f"Generated by `python -m ipcae.report {' '.join(map(str, dirs))}` from the per-run summaries in {sources} "
        f"({len(runs)} finished runs, {len(failures)} recorded failures). Do not edit by hand.",
        "",
        "Mean ± sample standard deviation over seeds; n = number of seeds. Test metrics are taken at the",
        "checkpoint with the lowest validation loss. Paper values: Nilsson, Wijk et al., ICML 2024.",
        "",
        "## Classification (test accuracy, %)",
        "",
        *classification_table(selected, failures, methods),
        "",
        "## Reconstruction (test MSE over all features)",
        "",
        *reconstruction_table(selected, failures),
        "",
    ]
    bounds = out.parent / "reconstruction_bounds.md"
    if bounds.is_file():
        lines += [
            f"Reference points on the same splits (PCA, ridge on the selected features): [{bounds.name}]"
            f"({bounds.name}),",
            "from `python scripts/reconstruction_bounds.py`.",
            "",
        ]
    if not lambdas.empty:
        lines += [
            "## GJSD and STG: lambda chosen on validation (lowest mean validation loss)",
            "",
            "Test accuracy is the one the classification table reports: joint decoder for GJSD, retrained",
            "decoder on the top K for STG (its joint decoder sees all features through the gates).",
            "*Averaged over the seeds that every lambda of the cell ran, so that lambdas compare on the same seeds.",
            "",
            "| method | dataset | task | lambda | mean val loss* | mean test accuracy % | seeds | chosen |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for row in lambdas.itertuples():
            value = row.retrained_accuracy if row.model in RETRAINED_ONLY else row.accuracy
            acc = f"{100 * value:.2f}" if pd.notna(value) else ""
            lines.append(
                f"| {DISPLAY[row.model]} | {DISPLAY[row.dataset]} | {row.task} | {row._4:g} | {row.val_loss:.4f} | "
                f"{acc} | {row.seeds} | "
                f"{'yes' if row.chosen else ''} |"
            )
        lines.append("")
    settings = runs.groupby(["dataset", "impute", "shuffle", "noise"], dropna=False).size().reset_index(name="runs")
    lines += [
        "## Settings recorded with the runs",
        "",
        "| dataset | impute | shuffle | noise | runs |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row in settings.itertuples():
        impute = row.impute if isinstance(row.impute, str) else ""
        lines.append(
            f"| {DISPLAY.get(row.dataset, row.dataset)} | {impute} | {row.shuffle} | {row.noise} | {row.runs} |"
        )
    lines.append("")
    if figure_paths:
        lines += ["## Unique Percentage and validation metric per epoch (CAE vs IP-CAE, mean over seeds)", ""]
        lines += [f"![{p.stem}]({os.path.relpath(p, out.parent)})" for p in figure_paths]
        lines.append("")
    lines += failure_section(failures)
    lines += [f"All runs: [{csv.name}]({os.path.relpath(csv, out.parent)})", ""]
    text = "\n".join(lines)
    write_text_atomic(out, text)
    return text


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m ipcae.report", description=__doc__.split("\n\n")[0])
    parser.add_argument("dirs", nargs="+", type=Path, help="directories searched for results.json")
    parser.add_argument("--out", type=Path, default=Path("docs/results.md"))
    parser.add_argument("--figures", type=Path, default=Path("docs/figures"))
    parser.add_argument("--csv", type=Path, default=Path("docs/runs.csv"))
    args = parser.parse_args(argv)
    build_report(args.dirs, args.out, args.figures, args.csv)
    print(f"wrote {args.out}, {args.csv} and figures under {args.figures}")


if __name__ == "__main__":
    main()
