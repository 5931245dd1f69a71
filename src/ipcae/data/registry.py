"""Dataset registry: names, paper defaults (K, batch size) and the loader of each dataset."""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ipcae.data.splits import Splits
from ipcae.errors import ConfigError

Loader = Callable[..., Splits]


@dataclass(frozen=True)
class DatasetInfo:
    """What the framework knows about a dataset before loading it."""

    name: str
    loader: Loader
    k: int
    batch_size: int
    description: str

    @property
    def options(self) -> dict[str, object]:
        """Keyword options of the loader and their defaults (``data_dir`` excluded)."""
        params = inspect.signature(self.loader).parameters
        return {n: p.default for n, p in params.items() if n != "data_dir"}


_REGISTRY: dict[str, DatasetInfo] = {}


def register(name: str, *, k: int, batch_size: int, description: str) -> Callable[[Loader], Loader]:
    """Register ``loader(data_dir: Path, **options) -> Splits`` under ``name``."""

    def decorate(loader: Loader) -> Loader:
        _REGISTRY[name] = DatasetInfo(name, loader, k, batch_size, description)
        return loader

    return decorate


def available_datasets() -> list[str]:
    return sorted(_REGISTRY)


def dataset_info(name: str) -> DatasetInfo:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown dataset {name!r}: choose one of {', '.join(available_datasets())}") from None


def default_data_dir() -> Path:
    """``$IPCAE_DATA_DIR`` if set, else ``~/.cache/ipcae/data``."""
    env = os.environ.get("IPCAE_DATA_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "ipcae" / "data"


def load_splits(name: str, data_dir: str | Path | None = None, **options: object) -> Splits:
    """Load a dataset's fixed train / validation / test splits as tensors, without Lightning.

    ``data_dir`` defaults to :func:`default_data_dir`. ``options`` are the dataset's
    preprocessing switches (for example ``impute="paper"`` for Mice Protein); an unknown option is
    an error rather than silently ignored, since it would change which numbers are comparable.
    """
    info = dataset_info(name)
    allowed = info.options
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        known = ", ".join(allowed) or "none"
        raise ConfigError(f"dataset {name!r} has no option {unknown[0]!r} (its options: {known})")
    root = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
    return info.loader(root, **options)
