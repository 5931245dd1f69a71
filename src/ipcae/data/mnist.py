"""MNIST and Fashion-MNIST: 28x28 grey images, 10 classes, from the official IDX files.

Splits as the reference: ``random_split`` of the 60,000 training images into 15% / 85% (seed 42)
keeps 9,000, which a second ``random_split`` (a fresh generator, seed 42) divides 80/20 into
7,200 train / 1,800 validation; the test set is the first 15% (1,500) of a ``random_split`` of the
10,000 test images. Pixels / 255, then a z-score with the reference's constants.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import random_split

from ipcae.data.digits import pixel_names
from ipcae.data.files import DataFile, DataSource
from ipcae.data.registry import register
from ipcae.data.splits import SPLIT_SEED, Splits
from ipcae.errors import DataError

# Bump when the preprocessing below changes, so that cached splits are rebuilt.
FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)

# SHA-256 of the canonical files (the shared copies are byte-identical to them: MD5s equal
# torchvision's lists, see shared/datasets/MANIFEST.md).
MNIST_SHA256 = {
    "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}
FASHION_SHA256 = {
    "train-images-idx3-ubyte.gz": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
    "train-labels-idx1-ubyte.gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
    "t10k-images-idx3-ubyte.gz": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
    "t10k-labels-idx1-ubyte.gz": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
}
# torchvision's MNIST mirror (its primary since yann.lecun.com began refusing downloads), then the
# copy TensorFlow's Keras downloads from; both serve the canonical bytes (the SHA-256 decides).
MNIST_URLS = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "https://storage.googleapis.com/cvdf-datasets/mnist/")
# The dataset's own S3 website, as listed by torchvision and zalandoresearch/fashion-mnist.
FASHION_URLS = ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",)

# The reference's normalisation constants (not recomputed from the data).
MEAN_STD = {"mnist": (0.1306, 0.3080), "fashion_mnist": (0.2873, 0.3529)}

_IDX_DTYPES = {0x08: np.uint8}


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (``.gz`` or plain) as a uint8 array of its declared shape."""
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if len(raw) < 4 or raw[:2] != b"\x00\x00" or raw[2] not in _IDX_DTYPES:
        raise DataError(f"{path} is not an IDX file of unsigned bytes")
    ndim = raw[3]
    header = 4 + 4 * ndim
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    if len(raw) != header + int(np.prod(dims)):
        raise DataError(f"{path}: IDX header says {dims} but the file has {len(raw) - header} data bytes")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def _check_idx(shape: tuple[int, ...]) -> Callable[[Path], None]:
    def check(path: Path) -> None:
        got = read_idx(path).shape
        if got != shape:
            raise DataError(f"{path.name}: shape {got}, expected {shape}")

    return check


def _source(name: str, sha: dict[str, str], bases: tuple[str, ...], homepage: str) -> DataSource:
    shapes = {
        "train-images-idx3-ubyte.gz": (60000, 28, 28),
        "train-labels-idx1-ubyte.gz": (60000,),
        "t10k-images-idx3-ubyte.gz": (10000, 28, 28),
        "t10k-labels-idx1-ubyte.gz": (10000,),
    }
    files = tuple(
        DataFile(f"{name}/{f}", sha256=sha[f], check=_check_idx(shapes[f]), urls=tuple(base + f for base in bases))
        for f in FILES
    )
    return DataSource(name, name, files, homepage=homepage)


SOURCES = {
    "mnist": _source("mnist", MNIST_SHA256, MNIST_URLS, "http://yann.lecun.com/exdb/mnist/"),
    "fashion_mnist": _source(
        "fashion_mnist", FASHION_SHA256, FASHION_URLS, "https://github.com/zalandoresearch/fashion-mnist"
    ),
}


def split_indices() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row indices (train, validation into the 60k file; test into the 10k file), in split order."""
    kept, _ = random_split(range(60000), [0.15, 0.85], generator=torch.Generator().manual_seed(SPLIT_SEED))
    train, val = random_split(kept, [0.8, 0.2], generator=torch.Generator().manual_seed(SPLIT_SEED))
    test, _ = random_split(range(10000), [0.15, 0.85], generator=torch.Generator().manual_seed(SPLIT_SEED))
    # Fractional lengths give 9,000 / 7,200 / 1,800 / 1,500 here, the reference's sizes (checked
    # in the tests); a Subset of a Subset indexes the inner Subset's indices.
    kept_idx = np.asarray(kept.indices)
    return kept_idx[train.indices], kept_idx[val.indices], np.asarray(test.indices)


def build(name: str, paths: dict[str, Path]) -> Splits:
    def read(f: str) -> np.ndarray:
        return read_idx(paths[f"{name}/{f}"])

    train_x, train_y = read(FILES[0]), read(FILES[1])
    test_x, test_y = read(FILES[2]), read(FILES[3])
    if len(train_x) != len(train_y) or len(test_x) != len(test_y):
        raise DataError(f"{name}: image and label files disagree on the number of examples")
    mean, std = MEAN_STD[name]

    def prepare(images: np.ndarray, rows: np.ndarray) -> np.ndarray:
        # Same float32 arithmetic as torchvision's ToTensor + Normalize in the reference.
        x = images[rows].reshape(len(rows), -1).astype(np.float32) / np.float32(255)
        return (x - np.float32(mean)) / np.float32(std)

    train, val, test = split_indices()
    return Splits.from_arrays(
        name,
        (prepare(train_x, train), train_y[train]),
        (prepare(train_x, val), train_y[val]),
        (prepare(test_x, test), test_y[test]),
        feature_names=pixel_names(28, 28),
        num_classes=10,
    )


for _name, _description in (
    ("mnist", "MNIST: 784 z-scored pixels (mean 0.1306, std 0.3080), 10 classes, 7,200 / 1,800 / 1,500"),
    (
        "fashion_mnist",
        "Fashion-MNIST: 784 z-scored pixels (mean 0.2873, std 0.3529), 10 classes, 7,200 / 1,800 / 1,500",
    ),
):
    register(_name, k=50, batch_size=128, description=_description, source=SOURCES[_name])(partial(build, _name))
