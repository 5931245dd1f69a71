"""ISOLET (UCI 54): 617 acoustic features of spoken letters, 26 classes.

Splits as the reference: ``random_split`` of ``isolet1+2+3+4.data`` (6,238 rows) 80/20 with seed
42 gives 4,990 train / 1,248 validation; the test set is ``isolet5.data`` (1,559 rows). MinMax to
[0, 1] fitted on the whole first file (train and validation rows), applied to all three; labels
1..26 become 0..25. Feature names are ``f0`` .. ``f616``: the 0-based column of the file.

Note: the shared copy of the training file holds the canonical rows in another order (see
shared/datasets/MANIFEST.md), so the same split indices pick other, equally random, rows.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.preprocessing import MinMaxScaler

from ipcae.data.files import DataFile, DataSource, open_maybe_compressed
from ipcae.data.registry import register
from ipcae.data.splits import Splits, reference_split_80_20
from ipcae.errors import DataError

NUM_FEATURES = 617
TRAIN = "isolet/isolet1+2+3+4.data"
TEST = "isolet/isolet5.data"

# Content fingerprints of the canonical files: SHA-256 of the rows as int64 (value * 1e4, every
# value has 4 decimals; label last), sorted, so that the row order does not matter. The shared
# training file has the canonical rows in another order and passes; the test file is canonical.
TRAIN_ROWS, TRAIN_FINGERPRINT = 6238, "d3c57891f770f4d995b13627d5eb5454c73d3a2bf06f3554eab79c25e51eff7c"
TEST_ROWS, TEST_FINGERPRINT = 1559, "9b960b7930549ff3c091bc3ceae15ae22fdf5d807eb54c7f5d7d8b28d1c3c927"
# SHA-256 of the canonical, uncompressed isolet5.data (its .Z in the UCI archive decompresses to it).
TEST_SHA256 = "d3409bb424f2bf9a68d0d07d4824b1d776b430d2e49c1207f00502a9e2f2a899"


def read_isolet(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Features (n x 617 float64) and labels 1..26 of a UCI ISOLET file (plain, ``.gz`` or ``.Z``)."""
    with open_maybe_compressed(path) as f:
        try:
            table = pd.read_csv(f, header=None, dtype=np.float64, engine="c").to_numpy()
        except (ValueError, pd.errors.ParserError) as exc:
            raise DataError(f"{path}: not an ISOLET data file ({exc})") from None
    if table.ndim != 2 or table.shape[1] != NUM_FEATURES + 1:
        raise DataError(f"{path}: {table.shape[1]} columns, expected {NUM_FEATURES} features and a label")
    labels = table[:, -1]
    if not np.all((labels >= 1) & (labels <= 26) & (labels == np.round(labels))):
        raise DataError(f"{path}: labels outside 1..26")
    return table[:, :-1], labels.astype(np.int64)


def fingerprint(x: np.ndarray, y: np.ndarray) -> str:
    rows = np.column_stack([np.rint(x * 1e4).astype(np.int64), y])
    rows = rows[np.lexsort(rows.T[::-1])]
    return hashlib.sha256(rows.tobytes()).hexdigest()


def _check(rows: int, expected: str) -> Callable[[Path], None]:
    def check(path: Path) -> None:
        x, y = read_isolet(path)
        if len(x) != rows:
            raise DataError(f"{len(x)} rows, expected {rows}")
        if fingerprint(x, y) != expected:
            raise DataError("the values differ from the canonical ISOLET file")

    return check


SOURCE = DataSource(
    "isolet",
    "isolet",
    (
        DataFile(TRAIN, (TRAIN + ".gz", TRAIN + ".Z"), check=_check(TRAIN_ROWS, TRAIN_FINGERPRINT)),
        DataFile(TEST, (TEST + ".gz", TEST + ".Z"), sha256=TEST_SHA256, check=_check(TEST_ROWS, TEST_FINGERPRINT)),
    ),
    # UCI's download; as far as known it holds isolet1+2+3+4.data.Z and isolet5.data.Z, which
    # are decompressed on extraction (plain or .gz members are taken as well).
    archive_url="https://archive.ics.uci.edu/static/public/54/isolet.zip",
    homepage="https://archive.ics.uci.edu/dataset/54/isolet",
)


@register("isolet", k=50, batch_size=128, description="ISOLET spoken letters, 617 features, 26 classes", source=SOURCE)
def build(paths: dict[str, Path]) -> Splits:
    """4,990 / 1,248 / 1,559 rows, MinMax-scaled on the training file."""
    x, y = read_isolet(paths[TRAIN])
    x_test, y_test = read_isolet(paths[TEST])
    scaler = MinMaxScaler().fit(x)
    x, x_test = scaler.transform(x), scaler.transform(x_test)
    train, val = reference_split_80_20(len(x))
    return Splits.from_arrays(
        "isolet",
        (x[train], y[train] - 1),
        (x[val], y[val] - 1),
        (x_test, y_test - 1),
        feature_names=[f"f{i}" for i in range(NUM_FEATURES)],
        num_classes=26,
    )
