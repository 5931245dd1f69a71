"""A cache of parsed and preprocessed splits, so that a dataset is parsed once, not every run.

Entries live in ``<cache root>/processed`` (``$IPCAE_CACHE_DIR/processed``, default
``~/.cache/ipcae/processed``), never in the data directory, which may be read-only. An entry's key
hashes the dataset name, the loader options, the cache format and loader versions, and the path,
size and modification time of every source file: replacing a source file, changing an option or a
loader's preprocessing (with its version) selects another entry. Entries are loaded with
``weights_only=True`` (no code runs on load) and checked against their key; anything unreadable
or inconsistent is deleted and rebuilt. Writes are atomic (temporary file + ``os.replace``), so
concurrent runs at worst both build the same entry. ``IPCAE_NO_CACHE=1`` bypasses the cache.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import torch

from ipcae.atomic import atomic_file
from ipcae.data.files import cache_root
from ipcae.data.splits import Splits

# Bump when the layout of an entry changes.
FORMAT_VERSION = 1
TENSORS = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")
DISABLE_ENV = "IPCAE_NO_CACHE"

log = logging.getLogger("ipcae")


def processed_dir() -> Path:
    return cache_root() / "processed"


def _stamp(path: Path) -> list[object]:
    st = path.stat()
    return [os.path.abspath(path), st.st_size, st.st_mtime_ns]


def entry_key(name: str, options: Mapping[str, object], files: Iterable[Path], version: int) -> tuple[str, str]:
    """``(options part, files part)`` of an entry's name: both are short SHA-256 prefixes.

    The options part identifies "this dataset with these options"; when its files part changes
    (a source file was replaced) older entries with the same options part are stale.
    """
    opts = json.dumps(
        {"format": FORMAT_VERSION, "version": version, "name": name, "options": dict(options)},
        sort_keys=True,
        default=repr,
    )
    stamps = json.dumps(sorted(_stamp(Path(p)) for p in files))
    return hashlib.sha256(opts.encode()).hexdigest()[:16], hashlib.sha256((opts + stamps).encode()).hexdigest()[:16]


def _to_entry(splits: Splits, key: str) -> dict[str, object]:
    entry: dict[str, object] = {t: getattr(splits, t).contiguous() for t in TENSORS}
    entry.update(format=FORMAT_VERSION, key=key, name=splits.name, feature_names=list(splits.feature_names))
    entry["num_classes"] = int(splits.num_classes)
    entry["class_names"] = None if splits.class_names is None else list(splits.class_names)
    return entry


def _from_entry(entry: object, name: str, key: str) -> Splits:
    """Rebuild Splits from a loaded entry, or raise ValueError if anything does not fit."""
    if not isinstance(entry, dict) or entry.get("format") != FORMAT_VERSION or entry.get("key") != key:
        raise ValueError("format or key mismatch")
    if entry.get("name") != name:
        raise ValueError("dataset name mismatch")
    tensors = {t: entry[t] for t in TENSORS}
    for t, value in tensors.items():
        # Labels are int64 classes, or float32 targets of a regression (then in all three splits).
        expected = (torch.int64, torch.float32) if t.startswith("y") else (torch.float32,)
        if not isinstance(value, torch.Tensor) or value.dtype not in expected:
            raise ValueError(f"{t} is not a {' or '.join(map(str, expected))} tensor")
    if len({tensors[t].dtype for t in ("y_train", "y_val", "y_test")}) != 1:
        raise ValueError("the label tensors differ in dtype")
    names = entry["feature_names"]
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ValueError("feature names are not strings")
    num_classes = entry["num_classes"]
    if not isinstance(num_classes, int):
        raise ValueError("num_classes is not an int")
    # Absent in entries written before class names existed: those datasets have none.
    class_names = entry.get("class_names")
    if class_names is not None and (
        not isinstance(class_names, list) or not all(isinstance(n, str) for n in class_names)
    ):
        raise ValueError("class names are not strings")
    # Splits checks that the shapes agree with each other, with the feature names and the classes.
    return Splits(name, **tensors, feature_names=names, num_classes=num_classes, class_names=class_names)


def cached_splits(
    name: str,
    options: Mapping[str, object],
    files: Iterable[Path],
    build: Callable[[], Splits],
    *,
    version: int = 1,
) -> Splits:
    """The cached splits for this dataset, options and source files, else ``build()`` (then cached).

    ``version`` is the loader's own preprocessing version: bump it when a loader changes its output.
    """
    if os.environ.get(DISABLE_ENV) == "1":
        return build()
    options_part, files_part = entry_key(name, options, files, version)
    folder = processed_dir()
    path = folder / f"{name}-{options_part}-{files_part}.pt"
    if path.is_file():
        try:
            entry = torch.load(path, map_location="cpu", weights_only=True)
            return _from_entry(entry, name, files_part)
        except Exception as exc:  # any unreadable or inconsistent entry is rebuilt, never trusted
            log.warning("discarding cache entry %s (%s)", path, exc)
            path.unlink(missing_ok=True)
    splits = build()
    if not splits.in_memory:
        # Sparse rows load as fast as a cache entry would; a memory-mapped file must stay one.
        return splits
    _write(folder, path, _to_entry(splits, files_part))
    # Entries for the same dataset and options but older source files can never be used again.
    for stale in folder.glob(f"{name}-{options_part}-*.pt"):
        if stale != path:
            stale.unlink(missing_ok=True)
    return splits


def _write(folder: Path, path: Path, entry: dict[str, object]) -> None:
    try:
        with atomic_file(path, binary=True) as f:
            torch.save(entry, f)
    except OSError as exc:
        # A read-only or full cache folder must not stop training: it only costs the parse next time.
        log.warning("cannot write the dataset cache entry %s (%s): set IPCAE_CACHE_DIR", path, exc)
