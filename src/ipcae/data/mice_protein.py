"""Mice Protein Expression (UCI 342): 77 protein levels, 8 classes, with missing values."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import MinMaxScaler

from ipcae.data.files import DataFile, DataSource
from ipcae.data.registry import register
from ipcae.data.splits import SPLIT_SEED, Splits
from ipcae.errors import ConfigError, DataError

FILE = "mice_protein/Data_Cortex_Nuclear.xls"
IMPUTE_CHOICES = ("train_mean", "paper")
# Bump when the preprocessing below changes, so that cached splits are rebuilt.
VERSION = 1
# SHA-256 of the parsed content (see fingerprint()): the UCI .xls changes bytes whenever Excel
# opens it (user name, timestamp), so no file checksum can identify it; its cell values can.
FINGERPRINT = "f6fa3bb14cb46a5f270386f614e983aa0b27dd4bcfa3b9f0cc17f04caddfd92c"
FACTORS = ("MouseID", "Genotype", "Treatment", "Behavior", "class")


def read_excel(path: Path) -> pd.DataFrame:
    try:
        return pd.read_excel(path, engine="xlrd")
    except Exception as exc:  # xlrd raises its own types for foreign or broken files
        raise DataError(f"{path}: not a readable .xls file ({exc})") from None


def read_table(path: Path) -> tuple[pd.DataFrame, pd.Series]:
    """Protein columns (77, in file order) and the class column of the original ``.xls``."""
    frame = read_excel(path)
    proteins = frame.columns[1:78]
    return frame[proteins].astype(np.float64), frame["class"]


def fingerprint(frame: pd.DataFrame) -> str:
    """SHA-256 of the 77 protein values (missing ones marked) and the ID and factor columns."""
    values = frame[frame.columns[1:78]].astype(np.float64).to_numpy()
    digest = hashlib.sha256()
    digest.update(np.isnan(values).tobytes())
    digest.update(np.nan_to_num(values, nan=0.0).tobytes())
    for column in FACTORS:
        digest.update("\n".join(frame[column].astype(str)).encode() + b"\0")
    return digest.hexdigest()


def check(path: Path) -> None:
    frame = read_excel(path)
    if frame.shape != (1080, 82) or not set(FACTORS) <= set(frame.columns):
        raise DataError(f"{frame.shape[0]} rows x {frame.shape[1]} columns, expected 1080 x 82")
    if fingerprint(frame) != FINGERPRINT:
        raise DataError("the values differ from the canonical Data_Cortex_Nuclear.xls")


SOURCE = DataSource(
    "mice_protein",
    "mice_protein",
    (DataFile(FILE, check=check),),
    # UCI's download; it holds Data_Cortex_Nuclear.xls at its top level.
    archive_url="https://archive.ics.uci.edu/static/public/342/mice+protein+expression.zip",
    homepage="https://archive.ics.uci.edu/dataset/342/mice+protein+expression",
)


@register(
    "mice_protein",
    k=10,
    batch_size=16,
    description="Mice Protein Expression, 77 proteins, 8 classes",
    source=SOURCE,
    version=VERSION,
)
def build(paths: dict[str, Path], impute: str = "train_mean") -> Splits:
    """648 / 216 / 216 rows split as the reference (``train_test_split`` with seed 42).

    ``impute="paper"`` fills a missing value with the mean of its protein over all rows of the same
    class, before splitting, as the reference does: it uses labels and test rows, so its numbers
    are optimistic and kept only for comparability. ``impute="train_mean"`` (the default) fills
    with the protein's mean over the training rows alone.
    """
    if impute not in IMPUTE_CHOICES:
        raise ConfigError(f"data.options.impute={impute!r} is unknown: use one of {', '.join(IMPUTE_CHOICES)}")
    path = paths[FILE]
    features, classes = read_table(path)
    class_names = sorted(classes.unique())
    labels = classes.map({c: i for i, c in enumerate(class_names)}).to_numpy()

    if impute == "paper":
        features = features.groupby(classes).transform(lambda col: col.fillna(col.mean()))

    rows = np.arange(len(features))
    train, rest = train_test_split(rows, train_size=0.6, shuffle=True, random_state=SPLIT_SEED)
    val, test = train_test_split(rest, train_size=0.5, shuffle=True, random_state=SPLIT_SEED)

    values = features.to_numpy()
    if impute == "train_mean":
        values = np.where(np.isnan(values), np.nanmean(values[train], axis=0), values)
    scaler = MinMaxScaler().fit(values[train])
    scaled = scaler.transform(values)
    return Splits.from_arrays(
        "mice_protein",
        (scaled[train], labels[train]),
        (scaled[val], labels[val]),
        (scaled[test], labels[test]),
        feature_names=list(features.columns),
        num_classes=len(class_names),
    )
