"""COIL-20 (scikit-feature's ``COIL20.mat``): 32x32 grey images of 20 objects, 72 views each.

Splits as the reference: ``random_split`` of the 1,440 rows 60/20/20 with seed 42 gives
864 / 288 / 288. No preprocessing (values are already in [0, 1]); labels 1..20 become 0..19.

Pixel order: each row of ``X`` is a 32x32 image flattened column-major (MATLAB order);
``row.reshape(32, 32, order="F")`` shows the objects upright and text readable. The columns are
kept in the file's order (that is what the reference feeds the model), and column ``j`` is named
``px_<j % 32>_<j // 32>`` (row, column of the upright image), so names mean the same pixel as
MNIST's ``px_<row>_<col>``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import scipy.io
import torch
from torch.utils.data import random_split

from ipcae.data.files import DataFile, DataSource
from ipcae.data.registry import register
from ipcae.data.splits import SPLIT_SEED, Splits
from ipcae.errors import DataError

FILE = "coil20/COIL20.mat"
SIDE = 32
# SHA-256 of the parsed arrays (X as C-ordered float64 bytes, then Y as int64): no checksum of the
# scikit-feature download is published, and .mat files re-saved elsewhere differ in header bytes
# only; the shared copy's arrays equal those of three independent copies.
FINGERPRINT = "ac9da26e12ede19fdb8b9fbf7243417366f4d3463723e79608324e164ac9ddbd"


def read_coil20(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``X`` (1440 x 1024 float64) and ``Y`` (1440 labels 1..20) of ``COIL20.mat``."""
    try:
        mat = scipy.io.loadmat(path)
    except Exception as exc:  # scipy raises several types for a broken or foreign file
        raise DataError(f"{path}: not a readable .mat file ({exc})") from None
    if "X" not in mat or "Y" not in mat:
        raise DataError(f"{path}: expected variables X and Y, found {sorted(k for k in mat if not k.startswith('__'))}")
    x = np.ascontiguousarray(mat["X"], dtype=np.float64)
    y = np.asarray(mat["Y"]).astype(np.int64).ravel()
    if x.ndim != 2 or x.shape[1] != SIDE * SIDE or len(x) != len(y):
        raise DataError(f"{path}: X is {x.shape} and Y has {len(y)} labels, expected n x {SIDE * SIDE} and n")
    return x, y


def fingerprint(x: np.ndarray, y: np.ndarray) -> str:
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(x, dtype=np.float64).tobytes())
    digest.update(np.ascontiguousarray(y, dtype=np.int64).tobytes())
    return digest.hexdigest()


def check(path: Path) -> None:
    x, y = read_coil20(path)
    if x.shape != (1440, SIDE * SIDE) or not np.array_equal(np.bincount(y, minlength=21)[1:], np.full(20, 72)):
        raise DataError(f"X is {x.shape}, expected 1440 x 1024 with 72 images of each of 20 objects")
    if fingerprint(x, y) != FINGERPRINT:
        raise DataError("the values differ from the canonical COIL20.mat")


SOURCE = DataSource(
    "coil20",
    "coil20",
    # scikit-feature's dataset page (its older home featureselection.asu.edu is gone); the
    # exact file URL is inferred from the page's link layout and is not confirmed here.
    (DataFile(FILE, check=check, urls=("https://jundongl.github.io/scikit-feature/files/datasets/COIL20.mat",)),),
    homepage="https://jundongl.github.io/scikit-feature/datasets.html",
)


def pixel_names_column_major(side: int) -> list[str]:
    """Names of the columns of a column-major flattened ``side x side`` image."""
    return [f"px_{j % side}_{j // side}" for j in range(side * side)]


@register("coil20", k=50, batch_size=16, description="COIL-20 objects, 32x32 pixels, 20 classes", source=SOURCE)
def build(paths: dict[str, Path]) -> Splits:
    """864 / 288 / 288 images, pixels as stored (already in [0, 1])."""
    x, y = read_coil20(paths[FILE])
    parts = random_split(range(len(x)), [0.6, 0.2, 0.2], generator=torch.Generator().manual_seed(SPLIT_SEED))
    train, val, test = (np.asarray(p.indices) for p in parts)
    return Splits.from_arrays(
        "coil20",
        (x[train], y[train] - 1),
        (x[val], y[val] - 1),
        (x[test], y[test] - 1),
        feature_names=pixel_names_column_major(SIDE),
        num_classes=20,
    )
