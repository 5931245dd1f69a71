"""Datasets: fixed splits as in-memory tensors, usable with or without Lightning.

>>> from ipcae.data import load_splits
>>> splits = load_splits("digits")
>>> splits.x_train.shape
torch.Size([1078, 64])
"""

# Importing the loader modules registers their datasets.
from ipcae.data import coil20, digits, har, isolet, mice_protein, mnist, table  # noqa: F401
from ipcae.data.registry import (
    DatasetInfo,
    available_datasets,
    dataset_info,
    default_data_dir,
    load_splits,
    register,
)
from ipcae.data.splits import Splits

__all__ = [
    "DatasetInfo",
    "InMemoryDataModule",
    "Splits",
    "available_datasets",
    "dataset_info",
    "default_data_dir",
    "load_splits",
    "register",
]


def __getattr__(name: str) -> object:
    # The DataModule imports Lightning (seconds); notebooks and the fetch command do without it.
    if name == "InMemoryDataModule":
        from ipcae.data.datamodule import InMemoryDataModule

        return InMemoryDataModule
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
