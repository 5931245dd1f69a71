"""Aggregate finished runs into one report beside the paper's numbers.

    python -m ipcae.report results/paper [more dirs...] --out docs/results.md --figures docs/figures

Reads every ``results.json`` (and ``failed.json``) below the given directories and writes a CSV of
all runs, a markdown page of mean +- std per method (and variant) x dataset x task with the paper's
values and the differences, the tuned hyper-parameters chosen on validation, and per-epoch curves of
Unique Percentage and the validation metric from the runs' ``epochs.csv``. Every method and dataset
that ran appears; names and paper values come from :mod:`ipcae.paper`.
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

from ipcae.atomic import write_text_atomic
from ipcae.paper import DATASETS, METHODS, display_name
from ipcae.variants import variant_section


def config_value(config: dict, dotted: str | None) -> object:
    """The value at a dotted key of a recorded config (None where absent)."""
    value: object = config
    for part in (dotted or "").split(".") if dotted else []:
        value = value.get(part) if isinstance(value, dict) else None
    return value if dotted else None


def reported_decoder(r: dict) -> str:
    """``joint`` or ``retrained``: the decoder whose test metrics stand for the run.

    Results record it; those written before the field existed get it by the rule training applies
    (a selector whose decoder reads more than its K features reports the retrained decoder), from the
    selector their config builds for their D and K.
    """
    if "reported" in r:
        return r["reported"]
    spec = dict((r.get("config") or {}).get("model", {}).get("selector") or {})
    if not spec or not r.get("retrained"):
        return "joint"
    # Only a selector class of this package is built: a results file never names code to run.
    import ipcae.selectors

    cls = getattr(ipcae.selectors, str(spec.pop("_target_", "")).rpartition(".")[2], None)
    if not (isinstance(cls, type) and issubclass(cls, ipcae.selectors.FeatureSelector)):
        return "joint"
    selector = cls(num_features=r["n_features"], k=r["k"], **spec)
    return "retrained" if selector.reports_retrained else "joint"


def run_row(path: Path, r: dict) -> dict:
    """The report's view of one results.json."""
    config = r.get("config", {})
    method = METHODS.get(r["model"])
    tuned = method.tuned if method else None
    # Overrides that define the run's cell beyond its preset (recorded since results carry them):
    # an ablation such as model.selector.noise=per_batch gets a row of its own. The tuned
    # hyper-parameter is not part of the row: it is chosen on validation within it.
    variant = " ".join(o for o in r.get("overrides") or [] if not (tuned and o.startswith(f"{tuned}=")))
    selector = config.get("model", {}).get("selector", {}) or {}
    data = config.get("data", {})
    retrained = r.get("retrained") or {}
    return {
        "path": str(path.parent),
        "model": r["model"],
        "variant": variant,
        "method": f"{r['model']} [{variant}]" if variant else r["model"],
        "dataset": r["dataset"],
        "task": r["task"],
        "seed": r["seed"],
        "k": r["k"],
        "lambda": config_value(config, tuned),
        # Which decoder's test metrics stand for the method: the joint one, or one retrained on
        # the K selected columns (selectors whose joint decoder sees every feature, such as gates).
        "reported": reported_decoder(r),
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


def load_runs(dirs: Iterable[Path]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One row per finished run, and one per recorded failure (with its error line)."""
    rows, failures = [], []
    for root in dirs:
        for path in sorted(Path(root).rglob("results.json")):
            rows.append(run_row(path, json.loads(path.read_text())))
        for path in sorted(Path(root).rglob("failed.json")):
            if (path.parent / "results.json").exists():
                continue
            f = json.loads(path.read_text())
            config = f.get("config", {})
            model = config.get("model", {}).get("name")
            failures.append(
                {
                    "path": str(path.parent),
                    "method": model,
                    "dataset": config.get("data", {}).get("name"),
                    "task": config.get("task", {}).get("name"),
                    "error": f["error"].splitlines()[0],
                }
            )
    return pd.DataFrame(rows), pd.DataFrame(failures, columns=["path", "method", "dataset", "task", "error"])


def reported_metric(runs: pd.DataFrame, metric: str) -> pd.Series:
    """Each run's test ``metric`` from the decoder that stands for its method (see ``reported``)."""
    retrained = pd.to_numeric(runs[f"retrained_{metric}"], errors="coerce")
    return pd.to_numeric(runs[metric], errors="coerce").where(runs.reported != "retrained", retrained)


def choose_lambda(runs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Keep, per method x dataset x task, only the runs of the tuned value with the lowest mean validation loss.

    Applies to the methods whose table entry names a ``tuned`` hyper-parameter (a penalty weight
    the paper does not publish). The mean is taken over the seeds that every value of the cell
    has run. The loss is that of the decoder whose numbers the method reports.
    """
    tuned = runs[runs["lambda"].notna()].copy()
    if tuned.empty:
        return runs, pd.DataFrame()
    # Methods reported through a retrained decoder on their top K choose on that decoder's
    # validation loss, not on the joint model's (which may see every feature).
    retrained_val = pd.to_numeric(tuned.retrained_val_loss, errors="coerce")
    use_retrained = (tuned.reported == "retrained") & retrained_val.notna()
    tuned["val_loss"] = pd.to_numeric(tuned.val_loss, errors="coerce").where(~use_retrained, retrained_val)
    tuned["reported_accuracy"] = reported_metric(tuned, "accuracy")
    # Values are compared on the seeds every one of them has run (paired), so a sweep that ran one
    # seed per value and more seeds only for the winner still ranks them on equal terms. Without a
    # seed in common, each value is averaged over its own seeds.
    cells = ["method", "dataset", "task"]
    keys = [*cells, "lambda"]
    lambdas_in_cell = tuned.groupby(cells)["lambda"].transform("nunique")
    shared = tuned.groupby([*cells, "seed"])["lambda"].transform("nunique") == lambdas_in_cell
    counted = shared | ~shared.groupby([tuned[c] for c in cells]).transform("any")
    table = (
        tuned.assign(val_loss=tuned.val_loss.where(counted))
        .groupby(keys, as_index=False)
        .agg(
            model=("model", "first"),
            val_loss=("val_loss", "mean"),
            accuracy=("reported_accuracy", "mean"),
            mse=("mse", "mean"),
            seeds=("seed", "nunique"),
        )
    )
    best = table.loc[table.groupby(cells).val_loss.idxmin()]
    chosen = set(best[keys].itertuples(index=False, name=None))
    keep = runs["lambda"].isna() | pd.Series(
        [key in chosen for key in runs[keys].itertuples(index=False, name=None)], index=runs.index
    )
    table["chosen"] = [key in chosen for key in table[keys].itertuples(index=False, name=None)]
    return runs[keep], table


def chosen_value(dirs: Iterable[Path], model: str, dataset: str, task: str = "classification") -> float | None:
    """The tuned value that :func:`choose_lambda` picks for the preset ``model`` on ``dataset`` x ``task`` from
    the runs so far (None before any ran): what a two-stage sweep runs on its remaining seeds.

    The preset's own cell is meant; where only one variant of it ran (runs sharing other overrides, such as
    a shortened smoke run), that one. Several variants and no plain cell is ambiguous: an error."""
    runs, _ = load_runs(dirs)
    if runs.empty:
        return None
    cell = runs[(runs.model == model) & (runs.dataset == dataset) & (runs.task == task) & runs["lambda"].notna()]
    variants = set(cell.variant)
    if "" in variants:
        cell = cell[cell.variant == ""]
    elif len(variants) > 1:
        raise SystemExit(
            f"error: {model} on {dataset} ran as {len(variants)} variants ({'; '.join(sorted(variants))}) and never "
            "as the preset: name one store per variant"
        )
    _, table = choose_lambda(cell)
    if table.empty:
        return None
    return float(table[table.chosen]["lambda"].iloc[0])


def ordered(names: Iterable[str], known: Iterable[str]) -> list[str]:
    """``known`` first in their order, then the rest alphabetically."""
    names, known = set(names), list(known)
    return [n for n in known if n in names] + sorted(names - set(known))


def row_label(method: str) -> str:
    """``ipcae [model.selector.noise=per_batch]`` -> ``IP-CAE [model.selector.noise=per_batch]``."""
    model, _, variant = method.partition(" ")
    return f"{display_name(model)} {variant}".strip()


def cell(values: pd.Series, scale: float = 1.0, fmt: str = ".2f", std_fmt: str | None = None) -> str:
    values = values.dropna() * scale
    if values.empty:
        return ""
    std = values.std(ddof=1) if len(values) > 1 else 0.0
    return f"{values.mean():{fmt}} ± {std:{std_fmt or fmt}} (n={len(values)})"


def missing_note(failures: pd.DataFrame, dataset: str, task: str, method: str) -> str:
    hits = failures[(failures.dataset == dataset) & (failures.task == task) & (failures.method == method)]
    # The full error line is listed once per dataset under "Runs that failed"; a table cell only points there.
    return "not run" if hits.empty else "failed (see below)"


def failure_section(failures: pd.DataFrame) -> list[str]:
    """One line per distinct error: which cells it stopped, and the error itself."""
    if failures.empty:
        return []
    lines = ["## Runs that failed", ""]
    for error, group in failures.groupby("error", sort=False):
        cells = sorted({f"{row_label(str(r.method))} {r.task}" for r in group.itertuples()})
        datasets = ", ".join(sorted({display_name(str(d)) for d in group.dataset}))
        runs = f"{len(group)} run{'' if len(group) == 1 else 's'}"
        lines.append(f"- {datasets} ({runs}: {', '.join(cells)}): `{error}`")
    lines.append("")
    return lines


def table_cells(runs: pd.DataFrame, failures: pd.DataFrame, task: str) -> list[tuple[str, str, pd.DataFrame]]:
    """(method, dataset, runs) for every cell to show: each paper method on each paper dataset
    (so that a missing cell is visible), and every method and dataset that ran or failed."""
    ran = runs[runs.task == task]
    tried = failures[failures.task == task]
    paper = [
        m
        for m, entry in METHODS.items()
        if (entry.classification if task == "classification" else entry.reconstruction)
    ]
    methods = ordered({*paper, *ran.method, *tried.method.dropna()}, METHODS)
    datasets = ordered({*DATASETS, *ran.dataset, *tried.dataset.dropna()}, DATASETS)
    cells = []
    for method in methods:
        for dataset in datasets:
            sel = ran[(ran.method == method) & (ran.dataset == dataset)]
            # A method's variants and non-paper datasets are shown only where they ran.
            if (
                sel.empty
                and (" " in method or dataset not in DATASETS or method not in paper)
                and not ((tried.method == method) & (tried.dataset == dataset)).any()
            ):
                continue
            cells.append((method, dataset, sel))
    return cells


def results_table(runs: pd.DataFrame, failures: pd.DataFrame, task: str) -> list[str]:
    """Classification: accuracy in % against the paper's; reconstruction: test MSE."""
    classification = task == "classification"
    if classification:
        header = (
            "| method | dataset | ours: accuracy % | paper | ours - paper | unique % | joint decoder % | "
            "retrained decoder % |"
        )
    else:
        header = "| method | dataset | ours: test MSE | paper | ours - paper | unique % | joint MSE | retrained MSE |"
    lines = [header, "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    metric, scale, fmt = ("accuracy", 100, ".2f") if classification else ("mse", 1, ".2e")
    for method, dataset, sel in table_cells(runs, failures, task):
        entry = METHODS.get(method)
        paper = (entry.classification if classification else entry.reconstruction).get(dataset) if entry else None
        paper_mean = paper[0] if isinstance(paper, tuple) else paper
        paper_text = f"{paper[0]:.2f} ± {paper[1]:.2f}" if isinstance(paper, tuple) else f"{paper:.2e}" if paper else ""
        label = f"| {row_label(method)} | {display_name(dataset)} |"
        if sel.empty:
            lines.append(f"{label} {missing_note(failures, dataset, task, method)} | {paper_text} | | | | |")
            continue
        values = reported_metric(sel, metric)
        diff = f"{scale * values.mean() - paper_mean:+{fmt}}" if paper else ""
        retrained = pd.to_numeric(sel[f"retrained_{metric}"])
        joint = pd.to_numeric(sel[metric])
        lines.append(
            f"{label} {cell(values, scale, fmt, None if classification else '.1e')} | {paper_text} | {diff} | "
            f"{cell(sel.unique_pct, fmt='.0f')} | {cell(joint, scale, fmt)} | {cell(retrained, scale, fmt)} |"
        )
    return lines


def plot_curves(runs: pd.DataFrame, figures: Path) -> list[Path]:
    """Per dataset and task: mean over seeds of val/unique_pct and the validation metric per epoch,
    one line per method whose runs recorded per-epoch metrics."""
    written = []
    for (dataset, task), group in runs.groupby(["dataset", "task"]):
        metric = "val/accuracy" if task == "classification" else "val/mse"
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
        plotted = False
        for method in ordered(set(group.method), METHODS):
            paths = group[group.method == method].path
            curves = [pd.read_csv(Path(p) / "epochs.csv") for p in paths if (Path(p) / "epochs.csv").is_file()]
            if not curves:
                continue
            stacked = pd.concat(curves).groupby("epoch")
            for ax, column in zip(axes, ["val/unique_pct", metric], strict=True):
                if column in curves[0]:
                    mean = stacked[column].mean()
                    ax.plot(mean.index, mean.values, label=f"{row_label(method)} (n={len(curves)})")
                    plotted = True
        if not plotted:
            plt.close(fig)
            continue
        name = display_name(dataset)
        axes[0].set(title=f"{name} {task}: Unique Percentage", xlabel="epoch", ylabel="%")
        axes[1].set(title=f"{name} {task}: {metric}", xlabel="epoch")
        if task == "reconstruction":
            axes[1].set_yscale("log")
        for ax in axes:
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize="small")
            ax.grid(alpha=0.3)
        fig.tight_layout()
        figures.mkdir(parents=True, exist_ok=True)
        path = figures / f"{dataset}_{task}_curves.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


def lambda_section(lambdas: pd.DataFrame) -> list[str]:
    if lambdas.empty:
        return []
    names = ", ".join(
        f"{display_name(m)} (`{METHODS[m].tuned}`)" for m in ordered(set(lambdas.model), METHODS) if m in METHODS
    )
    lines = [
        "## Hyper-parameters chosen on validation (lowest mean validation loss)",
        "",
        f"Swept and chosen per dataset: {names}. Test accuracy is the one the classification table reports",
        "(for STG the decoder retrained on the top K: its joint decoder sees all features through the gates).",
        "*Averaged over the seeds that every value of the cell ran, so that values compare on the same seeds.",
        "",
        "| method | dataset | task | lambda | mean val loss* | mean test accuracy % | seeds | chosen |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in lambdas.itertuples():
        acc = f"{100 * row.accuracy:.2f}" if pd.notna(row.accuracy) else ""
        lines.append(
            f"| {row_label(row.method)} | {display_name(row.dataset)} | {row.task} | {row._4:g} | {row.val_loss:.4f} | "
            f"{acc} | {row.seeds} | {'yes' if row.chosen else ''} |"
        )
    lines.append("")
    return lines


def build_report(dirs: list[Path], out: Path, figures: Path, csv: Path) -> str:
    runs, failures = load_runs(dirs)
    if runs.empty:
        raise SystemExit(
            f"error: no results.json under {', '.join(map(str, dirs))}: run scripts/reproduce_paper.sh first"
        )
    runs = runs.sort_values(["task", "dataset", "method", "lambda", "seed"], na_position="first")
    csv.parent.mkdir(parents=True, exist_ok=True)
    runs.drop(columns=["path"]).assign(source=[os.path.relpath(p, csv.parent) for p in runs.path]).to_csv(
        csv, index=False
    )
    selected, lambdas = choose_lambda(runs)
    figure_paths = plot_curves(selected, figures)
    sources = ", ".join(f"`{d}`" for d in dirs)
    lines = [
        "# Results",
        "",
        f"Generated by `python -m ipcae.report {' '.join(map(str, dirs))}` from the per-run summaries in {sources} "
        f"({len(runs)} finished runs, {len(failures)} recorded failures). Do not edit by hand.",
        "",
        "Mean ± sample standard deviation over seeds; n = number of seeds. Test metrics are taken at the",
        "checkpoint with the lowest validation loss. Paper values: Nilsson, Wijk et al., ICML 2024.",
        "A method shown with overrides in brackets is a variant of its preset (an ablation).",
        "'ours' is the decoder that stands for the method: the joint one, or for a selector whose joint decoder",
        "reads more than its K features (STG, SAND, Sequential Attention, masked top-k) a decoder retrained on",
        "the K; both decoders' numbers follow in the last two columns.",
        "",
        "## Classification (test accuracy, %)",
        "",
        *results_table(selected, failures, "classification"),
        "",
        "## Reconstruction (test MSE over all features)",
        "",
        *results_table(selected, failures, "reconstruction"),
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
    lines += lambda_section(lambdas)
    lines += variant_section(dirs)
    settings = runs.groupby(["dataset", "impute", "shuffle", "noise"], dropna=False).size().reset_index(name="runs")
    lines += [
        "## Settings recorded with the runs",
        "",
        "| dataset | impute | shuffle | noise | runs |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row in settings.itertuples():
        impute = row.impute if isinstance(row.impute, str) else ""
        lines.append(f"| {display_name(row.dataset)} | {impute} | {row.shuffle} | {row.noise} | {row.runs} |")
    lines.append("")
    if figure_paths:
        lines += ["## Unique Percentage and validation metric per epoch (mean over seeds)", ""]
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
    parser.add_argument(
        "--chosen",
        nargs=2,
        metavar=("MODEL", "DATASET"),
        help="only print the tuned value validation picks for this preset's classification cell (nothing before "
        "a run), and write no page",
    )
    args = parser.parse_args(argv)
    if args.chosen:
        value = chosen_value(args.dirs, *args.chosen)
        if value is not None:
            print(format(value, "g"))
        return
    build_report(args.dirs, args.out, args.figures, args.csv)
    print(f"wrote {args.out}, {args.csv} and figures under {args.figures}")


if __name__ == "__main__":
    main()
