"""Dataset registry: names, defaults (K, batch size), and the shared tail of every load.

A dataset is one module: its files (a :class:`~ipcae.data.files.DataSource`), a ``build``
function that reads them and returns :class:`Splits`, and one ``@register`` line. The registry
does the rest the same way for all of them: finding, downloading and verifying the files, the
preprocessed-splits cache, and refusing unknown options.
"""

from __future__ import annotations

import gzip
import importlib
import inspect
import os
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ipcae.data.cache import cached_splits
from ipcae.data.files import DataSource, ensure_files, register_source
from ipcae.data.splits import Splits
from ipcae.errors import ConfigError, DataError

# build(paths, **options) -> Splits, where paths maps each file's relative path to its location.
Build = Callable[..., Splits]


@dataclass(frozen=True)
class DatasetInfo:
    """What the framework knows about a dataset before loading it."""

    name: str
    build: Build
    k: int
    batch_size: int
    description: str
    source: DataSource | None = None
    # Options naming files of the user's (e.g. a table's path): located, stamped and cached like
    # a source's files.
    path_options: tuple[str, ...] = ()
    # Bump when ``build`` changes its output, so that cached splits are rebuilt.
    version: int = 1

    @property
    def options(self) -> dict[str, object]:
        """Keyword options of ``build`` and their defaults."""
        params = list(inspect.signature(self.build).parameters.values())[1:]
        return {p.name: p.default for p in params}


_REGISTRY: dict[str, DatasetInfo] = {}


def register(
    name: str,
    *,
    k: int,
    batch_size: int,
    description: str,
    source: DataSource | None = None,
    path_options: tuple[str, ...] = (),
    version: int = 1,
) -> Callable[[Build], Build]:
    """Register ``build(paths: dict[str, Path], **options) -> Splits`` under ``name``.

    With a ``source`` its files are found (or downloaded) and verified before ``build`` runs, and
    the result is cached. Without one and without ``path_options``, ``build`` gets ``{}`` and its
    result is not cached (data that ships with a package).
    """

    def decorate(build: Build) -> Build:
        if source is not None:
            register_source(source)
        _REGISTRY[name] = DatasetInfo(name, build, k, batch_size, description, source, path_options, version)
        return build

    return decorate


def import_dataset_module(module: str) -> None:
    """Import ``module`` (e.g. ``data.module=my_lab.datasets``) so that its ``@register`` lines run."""
    try:
        importlib.import_module(module)
    except ImportError as exc:
        raise ConfigError(
            f"data.module={module!r} cannot be imported ({exc}): put it on PYTHONPATH or install its package"
        ) from None


def user_file(option: str, value: object) -> Path:
    """The existing file that option ``data.<option>`` names (relative to the working directory)."""
    if value is None or str(value).strip() in ("", "???"):
        raise ConfigError(f"data.{option} is not set: add data.{option}=<your file> to the command line")
    path = Path(str(value)).expanduser().resolve()
    if not path.is_file():
        raise DataError(f"data.{option}={str(value)!r}: no such file (looked at {path})")
    return path


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
    options = {**allowed, **options}
    root = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
    if info.source is not None:
        paths = ensure_files(name, root)
    elif info.path_options:
        # The first path option is required; later ones (a table's labels file) are optional.
        paths = {
            option: user_file(option, options[option])
            for i, option in enumerate(info.path_options)
            if i == 0 or options[option] is not None
        }
    else:
        return info.build({}, **options)
    return cached_splits(name, options, paths.values(), lambda: _build(info, paths, options), version=info.version)


def _build(info: DatasetInfo, paths: dict[str, Path], options: dict[str, object]) -> Splits:
    """``info.build``, with a damaged compressed file reported by name rather than as a traceback."""
    try:
        return info.build(paths, **options)
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        files = ", ".join(str(p) for p in paths.values())
        raise DataError(
            f"{info.name}: a source file is truncated or damaged ({exc}); files: {files}: replace it by the original"
        ) from None
