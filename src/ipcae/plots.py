"""Pictures of a run: what it selected and how training went, as PNG files in the run folder.

``selection.png``: the selected pixels on the image grid (datasets whose feature names are
``px_<row>_<col>``) beside the selection probabilities; for other data, the selected features'
names with their probabilities. ``curves.png``: Unique Percentage, temperature and losses per
epoch, read from the run's ``metrics.csv``. The arrays behind them also feed the dashboards
(:class:`ipcae.callbacks.SelectionImages`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

SELECTION_PLOT = "selection.png"
CURVES_PLOT = "curves.png"
PIXEL = re.compile(r"px_(\d+)_(\d+)")


def image_shape(feature_names: Sequence[str]) -> tuple[int, int] | None:
    """(rows, columns) when every feature is a pixel ``px_<row>_<col>`` of a full row-major grid."""
    cells = [PIXEL.fullmatch(name) for name in feature_names]
    if not cells or not all(cells):
        return None
    rows = 1 + max(int(m.group(1)) for m in cells)
    cols = 1 + max(int(m.group(2)) for m in cells)
    if rows * cols != len(feature_names):
        return None
    expected = [f"px_{i // cols}_{i % cols}" for i in range(rows * cols)]
    return (rows, cols) if list(feature_names) == expected else None


@torch.no_grad()
def selection_matrix(selector: Any) -> np.ndarray:
    """What the selector puts on each feature, as rows x D in [0, 1].

    Concrete selectors: their K x D categorical probabilities; gates: the 1 x D gate means; others
    (fixed indices): the one-hot rows of their selection.
    """
    if hasattr(selector, "probabilities"):
        matrix = selector.probabilities()
    elif hasattr(selector, "gates"):
        matrix = selector.gates().reshape(1, -1)
    else:
        indices = selector.selected_indices()
        matrix = torch.zeros(len(indices), selector.num_features)
        matrix[torch.arange(len(indices)), indices.cpu()] = 1.0
    return matrix.detach().float().cpu().numpy()


def pixel_mask(indices: Sequence[int], shape: tuple[int, int]) -> np.ndarray:
    """How many of the K rows chose each pixel, on the image grid."""
    mask = np.zeros(shape[0] * shape[1], dtype=np.float32)
    np.add.at(mask, np.asarray(list(indices), dtype=np.int64), 1.0)
    return mask.reshape(shape)


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only: no display, safe in worker processes and on clusters
    import matplotlib.pyplot as plt

    return plt


def plot_selection(
    path: Path, indices: Sequence[int], probabilities: Sequence[float], feature_names: Sequence[str], matrix: np.ndarray
) -> Path:
    plt = _pyplot()
    shape = image_shape(feature_names)
    if shape is not None:
        fig, axes = plt.subplots(1, 2, figsize=(8, 4))
        axes[0].imshow(pixel_mask(indices, shape), cmap="magma", interpolation="nearest")
        axes[0].set_title(f"selected pixels (K = {len(indices)})")
        axes[1].imshow(matrix.max(axis=0).reshape(shape), cmap="viridis", interpolation="nearest", vmin=0)
        axes[1].set_title("max selection probability")
        for ax in axes:
            ax.set_xticks([])
            ax.set_yticks([])
    else:
        height = max(2.5, 0.3 * len(indices) + 1)
        fig, ax = plt.subplots(figsize=(7, height))
        labels = [f"{feature_names[i]} ({i})" for i in indices]
        ax.barh(range(len(indices)), probabilities, color="tab:blue")
        ax.set_yticks(range(len(indices)), labels)
        ax.invert_yaxis()
        ax.set_xlim(0, 1)
        ax.set_xlabel("selection probability")
        ax.set_title(f"selected features (K = {len(indices)})")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def epoch_table(metrics_csv: Path) -> Any:
    import pandas as pd

    frame = pd.read_csv(metrics_csv)
    frame = frame[frame["epoch"].notna()] if "epoch" in frame else frame
    # Lightning writes train and validation values of an epoch on separate rows.
    return frame.groupby("epoch", as_index=False).first()


def plot_curves(path: Path, metrics_csv: Path) -> Path | None:
    frame = epoch_table(metrics_csv)
    if "train/loss" in frame:
        frame = frame[frame["train/loss"].notna()]  # not the validation pass after fit
    panels = [
        ("Unique Percentage", ["train/unique_pct", "val/unique_pct"], False),
        ("temperature", ["train/temperature"], True),
        ("loss", ["train/loss", "val/loss"], False),
    ]
    panels = [(title, [c for c in columns if c in frame], log) for title, columns, log in panels]
    panels = [p for p in panels if p[1]]
    if frame.empty or not panels:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.2), squeeze=False)
    for ax, (title, columns, log) in zip(axes[0], panels, strict=True):
        for column in columns:
            ax.plot(frame["epoch"], frame[column], marker="." if len(frame) < 30 else None, label=column)
        ax.set_title(title)
        ax.set_xlabel("epoch")
        if log:
            ax.set_yscale("log")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_run_plots(
    output_dir: Path, results: dict[str, Any], selector: Any, feature_names: Sequence[str]
) -> list[Path]:
    """``selection.png`` and, where the run kept a metrics.csv, ``curves.png`` in ``output_dir``."""
    written = [
        plot_selection(
            output_dir / SELECTION_PLOT,
            results["selected_indices"],
            selector.selected_probabilities().detach().cpu().tolist(),
            feature_names,
            selection_matrix(selector),
        )
    ]
    metrics_csv = output_dir / "metrics.csv"
    if metrics_csv.is_file():
        curves = plot_curves(output_dir / CURVES_PLOT, metrics_csv)
        if curves is not None:
            written.append(curves)
    return written
