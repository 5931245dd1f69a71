"""Human Activity Recognition Using Smartphones (UCI 240): 561 features, 6 activities.

Splits as the reference: ``random_split`` of the official training set (7,352 rows) 80/20 with
seed 42 gives 5,881 train / 1,471 validation; the test set is the official one (2,947 rows).
MinMax to [0, 1] fitted on the whole training file, applied to all three; labels 1..6 become
0..5. Feature names are the 561 names of ``features.txt`` as written there, so some repeat (the
``bandsEnergy`` groups carry no axis in their names); refer to features by index where it matters.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.preprocessing import MinMaxScaler

from ipcae.data.files import DataFile, DataSource, open_maybe_compressed
from ipcae.data.registry import register
from ipcae.data.splits import Splits, reference_split_80_20
from ipcae.errors import DataError

NUM_FEATURES = 561
ROOT = "har/UCI HAR Dataset"
X_TRAIN, Y_TRAIN = f"{ROOT}/train/X_train.txt", f"{ROOT}/train/y_train.txt"
X_TEST, Y_TEST = f"{ROOT}/test/X_test.txt", f"{ROOT}/test/y_test.txt"
FEATURES = f"{ROOT}/features.txt"

# What the canonical files hold (UCI's description and shared/datasets/MANIFEST.md): rows and
# examples per class 1..6. No SHA-256 of the UCI files is known; git blob ids of the canonical
# X_train.txt / X_test.txt (b06f3e4c7cddf435f2f2b102b4824f51ee8a6298 / f3c01cbd355e0000229bce4e38156ee338fa6b08,
# from copies in 5 repositories) are recorded in the manifest for a manual check.
EXPECTED = {
    "train": (7352, (1226, 1073, 986, 1286, 1374, 1407)),
    "test": (2947, (496, 471, 420, 491, 532, 537)),
}


def read_matrix(path: Path) -> np.ndarray:
    """A whitespace-separated UCI HAR feature matrix (plain or ``.gz``), n x 561 float64."""
    with open_maybe_compressed(path) as f:
        try:
            # sep=r"\s+" runs in pandas' C parser; it skips the leading blanks of each line.
            x = pd.read_csv(f, sep=r"\s+", header=None, dtype=np.float64, engine="c").to_numpy()
        except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
            raise DataError(f"{path}: not a UCI HAR feature matrix ({exc})") from None
    if x.shape[1] != NUM_FEATURES:
        raise DataError(f"{path}: {x.shape[1]} columns, expected {NUM_FEATURES}")
    return x


def read_labels(path: Path) -> np.ndarray:
    """Activity labels 1..6, one per line."""
    with open_maybe_compressed(path) as f:
        y = np.loadtxt(f, dtype=np.int64, ndmin=1)
    if y.ndim != 1 or not np.all((y >= 1) & (y <= 6)):
        raise DataError(f"{path}: expected one activity label 1..6 per line")
    return y


def read_feature_names(path: Path) -> list[str]:
    """The second column of ``features.txt`` (``<index> <name>`` per line)."""
    with open_maybe_compressed(path) as f:
        lines = [line.strip() for line in f.read().decode().splitlines() if line.strip()]
    names = [line.split(maxsplit=1)[1] if " " in line else "" for line in lines]
    if len(names) != NUM_FEATURES or not all(names):
        raise DataError(f"{path}: expected {NUM_FEATURES} lines '<index> <name>', found {len(lines)}")
    return names


def _check_matrix(split: str) -> Callable[[Path], None]:
    def check(path: Path) -> None:
        rows = EXPECTED[split][0]
        x = read_matrix(path)
        if len(x) != rows:
            raise DataError(f"{len(x)} rows, expected {rows}")

    return check


def _check_labels(split: str) -> Callable[[Path], None]:
    def check(path: Path) -> None:
        rows, counts = EXPECTED[split]
        y = read_labels(path)
        got = tuple(int(c) for c in np.bincount(y, minlength=7)[1:])
        if len(y) != rows or got != counts:
            raise DataError(f"{len(y)} labels with class counts {got}, expected {rows} with {counts}")

    return check


def _alternatives(relpath: str) -> tuple[str, ...]:
    return (relpath + ".gz",)


SOURCE = DataSource(
    "har",
    "har",
    (
        DataFile(X_TRAIN, _alternatives(X_TRAIN), check=_check_matrix("train")),
        DataFile(Y_TRAIN, _alternatives(Y_TRAIN), check=_check_labels("train")),
        DataFile(X_TEST, _alternatives(X_TEST), check=_check_matrix("test")),
        DataFile(Y_TEST, _alternatives(Y_TEST), check=_check_labels("test")),
        DataFile(FEATURES, _alternatives(FEATURES), check=read_feature_names),
    ),
    # UCI's download holds "UCI HAR Dataset.zip" (plus a .names file and __MACOSX entries),
    # which holds the "UCI HAR Dataset/" folder: members are found in the nested zip.
    archive_url="https://archive.ics.uci.edu/static/public/240/human+activity+recognition+using+smartphones.zip",
    homepage="https://archive.ics.uci.edu/dataset/240/human+activity+recognition+using+smartphones",
)


@register(
    "har", k=50, batch_size=128, description="UCI HAR smartphone activities, 561 features, 6 classes", source=SOURCE
)
def build(paths: dict[str, Path]) -> Splits:
    """5,881 / 1,471 / 2,947 rows, MinMax-scaled on the training file."""
    x, y = read_matrix(paths[X_TRAIN]), read_labels(paths[Y_TRAIN])
    x_test, y_test = read_matrix(paths[X_TEST]), read_labels(paths[Y_TEST])
    for name, a, b in (("train", x, y), ("test", x_test, y_test)):
        if len(a) != len(b):
            raise DataError(f"har: the {name} matrix has {len(a)} rows but there are {len(b)} labels")
    scaler = MinMaxScaler().fit(x)
    x, x_test = scaler.transform(x), scaler.transform(x_test)
    train, val = reference_split_80_20(len(x))
    return Splits.from_arrays(
        "har",
        (x[train], y[train] - 1),
        (x[val], y[val] - 1),
        (x_test, y_test - 1),
        feature_names=read_feature_names(paths[FEATURES]),
        num_classes=6,
    )
