"""scikit-learn's bundled 8x8 digits: the default dataset, needs no download."""

from __future__ import annotations

from pathlib import Path

from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from ipcae.data.registry import register
from ipcae.data.splits import SPLIT_SEED, Splits


def pixel_names(height: int, width: int) -> list[str]:
    """``px_<row>_<col>`` for every pixel of a row-major image."""
    return [f"px_{r}_{c}" for r in range(height) for c in range(width)]


@register("digits", k=10, batch_size=128, description="scikit-learn digits, 8x8 pixels, 10 classes")
def build(paths: dict[str, Path]) -> Splits:
    """1,797 images, pixels / 16, stratified 60/20/20 split with seed 42."""
    x, y = load_digits(return_X_y=True)
    x = x / 16.0
    x_train, x_rest, y_train, y_rest = train_test_split(x, y, train_size=0.6, stratify=y, random_state=SPLIT_SEED)
    x_val, x_test, y_val, y_test = train_test_split(
        x_rest, y_rest, train_size=0.5, stratify=y_rest, random_state=SPLIT_SEED
    )

    return Splits.from_arrays(
        "digits",
        (x_train, y_train),
        (x_val, y_val),
        (x_test, y_test),
        feature_names=pixel_names(8, 8),
        num_classes=10,
    )
