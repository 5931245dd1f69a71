"""Your own data: a table or array file as train / validation / test splits (``data=table``).

Formats, by file suffix: CSV / TSV / TXT (delimiter detected, header detected; ``.gz``, ``.bz2``,
``.xz`` compressed too), Parquet (``pip install 'ipcae[parquet]'``), ``.npy`` (features only),
``.npz`` (arrays ``X`` and optionally ``y``), MATLAB ``.mat`` as the scikit-feature files (``X``,
``Y``; v7.3 / HDF5 files need ``pip install 'ipcae[hdf5]'``) and AnnData ``.h5ad`` (target from
an ``obs`` column; ``pip install 'ipcae[anndata]'``).

Large data stays out of memory's dense form (:mod:`ipcae.data.rows`): a sparse matrix (a file of
``scipy.sparse.save_npz``, Matrix Market ``.mtx``, a sparse ``X`` in ``.h5ad`` or ``.mat``) is kept
sparse end to end, and a ``.npy`` larger than ``data.mmap_above_gib`` (or any, with
``data.mmap=true``) is memory-mapped and read batch by batch. Such files hold features only; their
labels come from ``data.labels=FILE`` (``.npy``, or a one-column text file; ``data.target`` picks
a column of a wider one), or an ``obs`` column of ``.h5ad``.

Every choice that shapes the numbers happens here, once, and is cached like the benchmarks
(:func:`ipcae.data.cache.cached_splits`, keyed by the options and the file's size and modification
time): classes from the target column, a stratified split with its own seed (or the user's split
column), imputation and scaling fitted on the training rows alone. Bad input stops with one line
that names the value and the fix (:class:`ipcae.errors.ConfigError` / :class:`~ipcae.errors.DataError`).
"""

from __future__ import annotations

import bz2
import csv
import difflib
import gzip
import logging
import lzma
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from ipcae.data.registry import dataset_info, register
from ipcae.data.rows import SCAN_BLOCK_ELEMENTS, MappedRows, SparseRows
from ipcae.data.splits import Splits
from ipcae.errors import ConfigError, DataError

log = logging.getLogger("ipcae")

NAME = "table"
# Bump when the parsing or preprocessing below changes, so that cached splits are rebuilt.
TASKS = ("classification", "regression", "reconstruction")
SCALINGS = ("standard", "minmax", "none")
IMPUTES = ("none", "train_mean")
TEXT_SUFFIXES = (".csv", ".tsv", ".tab", ".txt", ".dat")
COMPRESSIONS = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}
FORMATS = (*TEXT_SUFFIXES, ".parquet", ".pq", ".npy", ".npz", ".mat", ".h5ad", ".mtx")
MMAP_CHOICES = ("auto", True, False)
# The arrays every scipy.sparse.save_npz file holds, whatever its format (csr, csc, bsr: indices and
# indptr besides; coo: row and col; dia: offsets).
SPARSE_NPZ_KEYS = {"data", "shape", "format"}
DELIMITER_NAMES = {
    "comma": ",",
    "tab": "\t",
    "\\t": "\t",
    "semicolon": ";",
    "pipe": "|",
    "space": " ",
    "whitespace": " ",
}
# Cells read as missing (pandas' defaults plus "?" of the UCI files); they never count as header evidence.
NA_VALUES = ["", "NA", "N/A", "NaN", "nan", "NULL", "null", "None", "?", "-", "#N/A"]
SPLIT_NAMES = {"train": 0, "training": 0, "val": 1, "valid": 1, "validation": 1, "test": 2, "testing": 2}
# A stratified three-way split needs a row of each class in each part.
MIN_ROWS_PER_CLASS = 3


@dataclass
class Matrix:
    """Features kept out of a DataFrame: a ``scipy.sparse`` CSR matrix or a memory-mapped array."""

    values: Any
    names: list[str]

    @property
    def sparse(self) -> bool:
        return not isinstance(self.values, np.ndarray)

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.values.shape)  # type: ignore[return-value]


@dataclass
class Table:
    """A file as read: numeric or not features, and the target and split columns if any."""

    features: pd.DataFrame | Matrix
    target: pd.Series | None
    split: pd.Series | None


def _preview(names: Sequence[object], n: int = 5) -> str:
    shown = ", ".join(str(x) for x in list(names)[:n])
    return shown + (f", ... ({len(names)} in all)" if len(names) > n else "")


def suffix_of(path: Path) -> str:
    """``.csv`` for ``a.csv`` and ``a.csv.gz`` alike."""
    suffixes = [s.lower() for s in path.suffixes]
    if len(suffixes) >= 2 and suffixes[-1] in COMPRESSIONS:
        return suffixes[-2]
    return suffixes[-1] if suffixes else ""


# --- reading ---------------------------------------------------------------------------------------


def _text_sample(path: Path, lines: int = 50) -> str:
    opener = COMPRESSIONS.get(path.suffix.lower(), open)
    try:
        with opener(path, "rt", errors="replace") as f:  # type: ignore[operator]
            return "".join(line for _, line in zip(range(lines), f, strict=False))
    except OSError as exc:
        raise DataError(f"data.path={str(path)!r} cannot be read ({exc})") from None


def detect_delimiter(sample: str, suffix: str) -> str:
    """The delimiter of a text table: tab for ``.tsv``, else what :class:`csv.Sniffer` finds (comma if nothing)."""
    if suffix in (".tsv", ".tab"):
        return "\t"
    try:
        found = csv.Sniffer().sniff(sample, delimiters=",\t;| ").delimiter
    except csv.Error:  # a single column, or nothing it recognises
        return ","
    # Space-aligned files repeat the space: any run of whitespace separates.
    return r"\s+" if found == " " else found


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def detect_header(path: Path, sep: str) -> bool:
    """Whether the first row names the columns.

    Yes if a column that holds only numbers below the first row has a non-number in it (missing
    markers do not count); no if there are such numeric columns and the first row has numbers in all
    of them. A table without any numeric column is left to :meth:`csv.Sniffer.has_header`.
    """
    rows = pd.read_csv(path, sep=sep, header=None, dtype=str, nrows=200, keep_default_na=False, skipinitialspace=True)
    if len(rows) < 2:
        return not all(_is_number(c) or c.strip() in NA_VALUES for c in rows.iloc[0]) if len(rows) else False
    first, rest = rows.iloc[0], rows.iloc[1:]
    numeric_columns = [
        c
        for c in rows.columns
        if any(v.strip() not in NA_VALUES for v in rest[c])
        and all(_is_number(v) or v.strip() in NA_VALUES for v in rest[c])
    ]
    if numeric_columns:
        return any(not _is_number(first[c]) and first[c].strip() not in NA_VALUES for c in numeric_columns)
    try:
        return csv.Sniffer().has_header(_text_sample(path))
    except csv.Error:
        return True


def read_text(path: Path, delimiter: str | None, header: bool | str | None) -> pd.DataFrame:
    suffix = suffix_of(path)
    if delimiter is not None:
        sep = DELIMITER_NAMES.get(str(delimiter).lower(), str(delimiter))
        sep = r"\s+" if sep == " " else sep
    else:
        sep = detect_delimiter(_text_sample(path), suffix)
    if header is None or header == "auto":
        header = detect_header(path, sep)
    elif not isinstance(header, bool):
        raise ConfigError(f"data.header={header!r} is unknown: use auto, true or false")
    try:
        frame = pd.read_csv(path, sep=sep, header=0 if header else None, na_values=NA_VALUES, skipinitialspace=True)
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise DataError(f"data.path={str(path)!r} is not a readable table ({str(exc).splitlines()[0]})") from None
    if header:
        # A first column without a name is a row index (pandas' and R's to_csv write one): not a feature.
        if str(frame.columns[0]).startswith("Unnamed: 0"):
            log.info("%s: the first column has no name; it is read as row labels, not as a feature", path.name)
            frame = frame.iloc[:, 1:]
        frame.columns = [str(c) for c in frame.columns]
    else:
        frame.columns = [f"f{j}" for j in range(frame.shape[1])]
    return frame


def _need(module: str, extra: str, suffix: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise DataError(f"reading {suffix} files needs {module}: pip install 'ipcae[{extra}]'") from None


def _column(frame: pd.DataFrame, option: str, value: str | int, path: Path) -> str:
    """The column that ``data.<option>=value`` names: a name, or a position (negative from the end)."""
    columns = list(frame.columns)
    if isinstance(value, int) and not isinstance(value, bool):
        if -len(columns) <= value < len(columns):
            return columns[value]
        raise ConfigError(f"data.{option}={value} is out of range: {path.name} has {len(columns)} columns")
    if str(value) in columns:
        return str(value)
    close = difflib.get_close_matches(str(value), [str(c) for c in columns], n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise ConfigError(
        f"data.{option}={value!r} is not a column of {path.name}: {hint}its columns are {_preview(columns)}"
    )


def _split_frame(frame: pd.DataFrame, target: str | int | None, split_column: str | int | None, path: Path) -> Table:
    split_name = _column(frame, "split_column", split_column, path) if split_column is not None else None
    target_name = _column(frame, "target", target, path) if target is not None else None
    if target_name is not None and target_name == split_name:
        raise ConfigError(f"data.target and data.split_column both name column {target_name!r}: pick two columns")
    keep = [c for c in frame.columns if c not in (target_name, split_name)]
    return Table(
        frame[keep],
        frame[target_name].rename(target_name) if target_name is not None else None,
        frame[split_name] if split_name is not None else None,
    )


def _arrays_table(
    arrays: dict[str, np.ndarray], target: str | int | None, split_column: str | int | None, path: Path
) -> Table:
    """``X`` (n x D), the target array (default ``y`` / ``Y`` if there is one), a split array, names."""
    names = {k.lower(): k for k in arrays}
    if "x" not in names:
        raise DataError(f"{path.name} has no array X (it holds {_preview(sorted(arrays))}): save the features as X")
    x = arrays[names["x"]]
    # loadmat returns sparse matrices as such: they stay sparse.
    x = x.tocsr() if hasattr(x, "tocsr") else np.asarray(x)
    if x.ndim != 2:
        raise DataError(f"{path.name}: X has shape {x.shape}; it must be a matrix (rows = examples)")
    if target is None:
        target = names.get("y")
    elif str(target) not in arrays:
        raise ConfigError(f"data.target={target!r} is not an array of {path.name}: it holds {_preview(sorted(arrays))}")

    def column(key: str | int | None, option: str) -> pd.Series | None:
        if key is None:
            return None
        if str(key) not in arrays:
            raise ConfigError(
                f"data.{option}={key!r} is not an array of {path.name}: it holds {_preview(sorted(arrays))}"
            )
        values = np.asarray(arrays[str(key)])
        values = values.ravel() if values.ndim == 2 and 1 in values.shape else values
        if values.shape != (x.shape[0],):
            raise DataError(
                f"{path.name}: {key} has shape {values.shape}, expected one value per row of X ({x.shape[0]})"
            )
        if values.dtype.kind in "US":
            values = values.astype(str)
        return pd.Series(values, name=str(key))

    feature_names = [f"f{j}" for j in range(x.shape[1])]
    if "feature_names" in arrays and len(arrays["feature_names"]) == x.shape[1]:
        feature_names = [str(n) for n in np.asarray(arrays["feature_names"]).ravel()]
    features = Matrix(x, feature_names) if hasattr(x, "tocsr") else pd.DataFrame(x, columns=feature_names, copy=False)
    return Table(features, column(target, "target"), column(split_column, "split_column"))


HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def _is_hdf5(path: Path) -> bool:
    """HDF5's signature at offset 0 or after MATLAB v7.3's 512-byte header."""
    with open(path, "rb") as f:
        head = f.read(520)
    return head[:8] == HDF5_SIGNATURE or head[512:520] == HDF5_SIGNATURE


def _read_mat(path: Path) -> dict[str, np.ndarray]:
    import scipy.io

    if _is_hdf5(path):  # MATLAB v7.3 (scipy reads up to v7.2)
        h5py = _need("h5py", "hdf5", ".mat (v7.3)")
        with h5py.File(path, "r") as f:
            # MATLAB stores column-major: an n x D matrix reads back as D x n.
            return {k: np.asarray(f[k][()]).T for k in f if isinstance(f[k], h5py.Dataset)}
    try:
        mat = scipy.io.loadmat(path)
    except (ValueError, OSError, TypeError, NotImplementedError) as exc:
        raise DataError(f"data.path={str(path)!r} is not a readable .mat file ({exc})") from None
    return {k: v for k, v in mat.items() if not k.startswith("__")}


def _read_h5ad(path: Path, target: str | int | None, split_column: str | int | None) -> Table:
    anndata = _need("anndata", "anndata", ".h5ad")
    adata = anndata.read_h5ad(path)
    names = [str(v) for v in adata.var_names]
    if hasattr(adata.X, "tocsr"):
        features: pd.DataFrame | Matrix = Matrix(adata.X.tocsr(), names)
    else:
        features = pd.DataFrame(np.asarray(adata.X), columns=names, copy=False)
    # data.target and data.split_column name obs columns.
    obs = _split_frame(adata.obs.reset_index(drop=True), target, split_column, path)
    return Table(features, obs.target, obs.split)


def _read_npy(path: Path, mmap: bool | str, mmap_above_gib: float) -> Table:
    if mmap not in MMAP_CHOICES:
        raise ConfigError(f"data.mmap={mmap!r} is unknown: use auto, true or false")
    try:
        x = np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as exc:
        raise DataError(f"data.path={str(path)!r} is not a readable .npy file ({exc})") from None
    if x.ndim != 2:
        raise DataError(f"{path.name}: the array has shape {x.shape}; it must be a matrix (rows = examples)")
    mapped = mmap is True or (mmap == "auto" and path.stat().st_size > mmap_above_gib * 2**30)
    names = [f"f{j}" for j in range(x.shape[1])]
    if mapped:
        if x.dtype.kind not in "fiu":
            raise DataError(f"{path.name}: a memory-mapped .npy must hold numbers, not {x.dtype}")
        log.info("%s: memory-mapped (%.2f GiB); batches are read from the file", path.name, x.nbytes / 2**30)
        return Table(Matrix(x, names), None, None)
    return Table(pd.DataFrame(np.array(x), columns=names, copy=False), None, None)


def _read_sparse_npz(path: Path) -> Table:
    import scipy.sparse

    try:
        x = scipy.sparse.load_npz(path).tocsr()
    except (ValueError, OSError, KeyError) as exc:
        raise DataError(f"data.path={str(path)!r} is not a readable scipy.sparse .npz file ({exc})") from None
    return Table(Matrix(x, [f"f{j}" for j in range(x.shape[1])]), None, None)


def _read_mtx(path: Path) -> Table:
    import scipy.io

    try:
        x = scipy.io.mmread(path)
    except (ValueError, OSError, IndexError) as exc:
        raise DataError(f"data.path={str(path)!r} is not a readable Matrix Market file ({exc})") from None
    names = [f"f{j}" for j in range(x.shape[1])]
    if hasattr(x, "tocsr"):
        return Table(Matrix(x.tocsr(), names), None, None)
    return Table(pd.DataFrame(np.asarray(x, dtype=np.float64), columns=names, copy=False), None, None)


def read_labels(path: Path, column: str | int | None, rows: int, main: Path) -> pd.Series:
    """The target of ``data.labels=FILE``: ``.npy`` (one value per row) or a text table of one column
    (with or without header; ``data.target`` picks a column of a wider one)."""
    suffix = suffix_of(path)
    if suffix == ".npy":
        try:
            values = np.load(path, allow_pickle=False)
        except ValueError as exc:
            raise DataError(f"data.labels={str(path)!r} is not a readable .npy file ({exc})") from None
        values = values.ravel() if values.ndim == 2 and 1 in values.shape else values
        if values.ndim != 1:
            raise DataError(f"data.labels={path.name}: shape {values.shape}; give one value per row")
        series = pd.Series(values.astype(str) if values.dtype.kind in "US" else values, name=path.stem)
    elif suffix in TEXT_SUFFIXES:
        frame = read_text(path, None, "auto")
        if frame.shape[1] == 1 and column is None:
            series = frame.iloc[:, 0].rename(str(frame.columns[0]) if str(frame.columns[0]) != "f0" else path.stem)
        elif column is None:
            raise ConfigError(
                f"data.labels={path.name} has {frame.shape[1]} columns ({_preview(list(frame.columns))}): "
                "name the label column with data.target=<column>"
            )
        else:
            series = frame[_column(frame, "target", column, path)]
    else:
        raise ConfigError(f"data.labels={path.name!r}: use a .npy file or a text table (.csv, .tsv, .txt)")
    if len(series) != rows:
        raise DataError(
            f"data.labels={path.name} holds {len(series)} values but {main.name} has {rows} rows: "
            "give one label per row"
        )
    return series.reset_index(drop=True)


def read_table(
    path: Path,
    target: str | int | None = None,
    split_column: str | int | None = None,
    header: bool | str | None = "auto",
    delimiter: str | None = None,
    mmap: bool | str = "auto",
    mmap_above_gib: float = 1.0,
    labels_given: bool = False,
) -> Table:
    """Read any supported file into features, target and split column (nothing converted yet).

    ``labels_given``: the target comes from a separate file, so a features-only file is fine.
    """
    suffix = suffix_of(path)
    if suffix in TEXT_SUFFIXES:
        return _split_frame(read_text(path, delimiter, header), target, split_column, path)
    if suffix in (".parquet", ".pq"):
        _need("pyarrow", "parquet", suffix)
        try:
            frame = pd.read_parquet(path)
        except Exception as exc:  # pyarrow's own error types for foreign or broken files
            raise DataError(f"data.path={str(path)!r} is not a readable Parquet file ({exc})") from None
        frame.columns = [str(c) for c in frame.columns]
        return _split_frame(frame, target, split_column, path)
    if suffix in (".npy", ".npz", ".mtx") and split_column is not None:
        raise ConfigError(f"data.split_column: {path.name} holds features only; a split column needs a table")
    if suffix == ".npy":
        if target is not None and not labels_given:
            raise ConfigError(
                f"{path.name} holds features only: give the labels as data.labels=FILE (.npy or .csv), "
                "or save X and y together with numpy.savez as .npz"
            )
        return _read_npy(path, mmap, mmap_above_gib)
    if suffix == ".npz":
        with np.load(path, allow_pickle=False) as npz:
            if set(npz.files) >= SPARSE_NPZ_KEYS:  # written by scipy.sparse.save_npz
                return _read_sparse_npz(path)
            arrays = {k: npz[k] for k in npz.files}
        return _arrays_table(arrays, target, split_column, path)
    if suffix == ".mtx":
        return _read_mtx(path)
    if suffix == ".mat":
        return _arrays_table(_read_mat(path), target, split_column, path)
    if suffix == ".h5ad":
        return _read_h5ad(path, target, split_column)
    raise ConfigError(
        f"data.path={path.name!r}: unknown format {suffix or '(no suffix)'!r}: use one of {', '.join(FORMATS)}"
    )


# --- converting ------------------------------------------------------------------------------------


def numeric_features(table: Table, drop_non_numeric: bool, path: Path) -> pd.DataFrame:
    features = table.features
    bad = [c for c in features.columns if not pd.api.types.is_numeric_dtype(features[c])]
    if bad and not drop_non_numeric:
        column = features[bad[0]]
        example = column[pd.to_numeric(column, errors="coerce").isna() & column.notna()]
        shown = f" ({bad[0]!r} holds {example.iloc[0]!r})" if len(example) else ""
        raise DataError(
            f"{path.name}: {len(bad)} non-numeric feature column(s): {_preview(bad)}{shown}: encode them as numbers "
            "or pass data.drop_non_numeric=true to leave them out"
        )
    if bad:
        log.warning("%s: left out %d non-numeric column(s): %s", path.name, len(bad), _preview(bad))
        features = features.drop(columns=bad)
    if features.shape[1] == 0:
        raise DataError(f"{path.name}: no numeric feature column is left")
    return features.astype(np.float64)


def class_labels(target: pd.Series, path: Path) -> tuple[np.ndarray, list[str]]:
    """Labels 0..C-1 and the class names (sorted: numbers by value, strings alphabetically)."""
    values = target.to_numpy()
    if pd.api.types.is_bool_dtype(target):
        values = values.astype(bool)
    elif pd.api.types.is_numeric_dtype(target):
        values = values.astype(np.float64)
        if not np.all(values == np.round(values)):
            example = values[values != np.round(values)][0]
            raise ConfigError(
                f"target {target.name!r} of {path.name} holds non-integer numbers (e.g. {example:g}): "
                "pass task=regression to predict it, or give class labels"
            )
        values = values.astype(np.int64)
    else:
        values = values.astype(str)
    classes, labels = np.unique(values, return_inverse=True)
    if len(classes) < 2:
        raise DataError(f"target {target.name!r} of {path.name} has a single class ({classes[0]!r}): nothing to learn")
    return labels.astype(np.int64), [str(c) for c in classes]


def regression_target(target: pd.Series, path: Path) -> np.ndarray:
    if pd.api.types.is_bool_dtype(target) or not pd.api.types.is_numeric_dtype(target):
        example = target[pd.to_numeric(target, errors="coerce").isna()]
        shown = f" (e.g. {example.iloc[0]!r})" if len(example) else ""
        raise ConfigError(
            f"target {target.name!r} of {path.name} is not numeric{shown}: task=regression needs numbers; "
            "use task=classification for labels"
        )
    return target.to_numpy(dtype=np.float64)


def split_rows(
    n: int,
    labels: np.ndarray | None,
    class_names: list[str] | None,
    fractions: tuple[float, float, float],
    seed: int,
    path: Path,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Train / validation / test rows: random, stratified by class where there are classes."""
    rows = np.arange(n)
    train_f, val_f, test_f = fractions
    if labels is not None and class_names is not None:
        counts = np.bincount(labels, minlength=len(class_names))
        smallest = int(np.argmin(counts))
        if counts[smallest] < MIN_ROWS_PER_CLASS:
            raise DataError(
                f"class {class_names[smallest]!r} of {path.name} has {counts[smallest]} row(s); a stratified "
                f"train/val/test split needs at least {MIN_ROWS_PER_CLASS} per class: add rows, drop or merge the "
                "class, or give the split in data.split_column"
            )
    try:
        train, rest = train_test_split(rows, train_size=train_f, random_state=seed, stratify=labels)
        val, test = train_test_split(
            rest,
            train_size=val_f / (val_f + test_f),
            random_state=seed,
            stratify=None if labels is None else labels[rest],
        )
    except ValueError as exc:  # too few rows for these fractions, or a class too small for them
        where = ""
        if labels is not None and class_names is not None:
            counts = np.bincount(labels, minlength=len(class_names))
            where = f" (smallest class {class_names[int(np.argmin(counts))]!r}: {counts.min()} rows)"
        raise DataError(
            f"{path.name}: {n} rows cannot be split {train_f:g}/{val_f:g}/{test_f:g}{where}: {exc}; "
            "change data.fractions or give the split in data.split_column"
        ) from None
    return np.sort(train), np.sort(val), np.sort(test)


def user_split(split: pd.Series, path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows whose split column says train / val / test (case and spaces ignored; validation, valid accepted)."""
    values = split.astype(str).str.strip().str.lower()
    codes = values.map(SPLIT_NAMES)
    if codes.isna().any():
        unknown = sorted(split[codes.isna()].astype(str).unique())
        raise DataError(
            f"split column {split.name!r} of {path.name} holds {_preview([repr(u) for u in unknown])}: "
            "every row must say train, val or test"
        )
    parts = tuple(np.flatnonzero(codes.to_numpy() == code) for code in range(3))
    for name, part in zip(("train", "val", "test"), parts, strict=True):
        if len(part) == 0:
            raise DataError(f"split column {split.name!r} of {path.name} has no {name} rows: each split needs some")
    return parts  # type: ignore[return-value]


def _fractions(value: Sequence[float]) -> tuple[float, float, float]:
    try:
        fractions = tuple(float(f) for f in value)
    except (TypeError, ValueError):
        fractions = ()
    if len(fractions) != 3 or min(fractions) <= 0 or not math.isclose(sum(fractions), 1.0, abs_tol=1e-6):
        raise ConfigError(
            f"data.fractions={list(value) if isinstance(value, Sequence) else value!r}: give three positive "
            "train/val/test fractions that sum to 1, e.g. data.fractions=[0.6,0.2,0.2]"
        )
    return fractions  # type: ignore[return-value]


def read_and_split(
    path: Path,
    *,
    target: str | int | None,
    task: str,
    fractions: Sequence[float],
    split_seed: int,
    split_column: str | int | None,
    scaling: str,
    impute: str,
    drop_non_numeric: bool,
    scale_target: bool,
    header: bool | str | None,
    delimiter: str | None,
    labels: Path | None = None,
    mmap: bool | str = "auto",
    mmap_above_gib: float = 1.0,
) -> Splits:
    # A target given with task=reconstruction is read (so that it is not taken for a feature) and unused.
    table = read_table(
        path, None if labels is not None else target, split_column, header, delimiter, mmap, mmap_above_gib,
        labels_given=labels is not None,
    )  # fmt: skip
    n = table.features.shape[0]
    if labels is not None:
        if table.target is not None:
            raise ConfigError(
                f"data.labels is given but {path.name} holds a target ({table.target.name!r}) already: drop one"
            )
        table.target = read_labels(labels, target, n, path)
    if task in ("classification", "regression") and table.target is None:
        if isinstance(table.features, Matrix):
            hint = "pass data.labels=<file with one label per row>"
        else:
            hint = f"pass data.target=<column> (the columns of {path.name}: {_preview(list(table.features.columns))})"
        raise ConfigError(f"task={task} needs a target: {hint}, or task=reconstruction")
    features = table.features if isinstance(table.features, Matrix) else numeric_features(table, drop_non_numeric, path)

    class_names = y = None
    labels_ = None
    if task != "reconstruction" and table.target is not None:
        missing = table.target.isna().to_numpy()
        if missing.any():
            rows = np.flatnonzero(missing)
            raise DataError(
                f"{path.name}: {len(rows)} row(s) have no value in the target {table.target.name!r} "
                f"(first: data row {rows[0]}): remove those rows"
            )
        if task == "classification":
            labels_, class_names = class_labels(table.target, path)
        else:
            y = regression_target(table.target, path)

    if table.split is not None:
        train, val, test = user_split(table.split, path)
    else:
        train, val, test = split_rows(n, labels_, class_names, _fractions(fractions), split_seed, path)

    if task == "classification":
        targets = labels_
        num_classes, y_dtype = len(class_names), torch.int64
    elif task == "regression":
        if scale_target:
            # The MSE then reads in units of the target's training variance (about 1 - R^2).
            mean, std = y[train].mean(), y[train].std()
            y = (y - mean) / (std if std > 0 else 1.0)
        targets, num_classes, y_dtype = y, 0, torch.float32
    else:
        targets, num_classes, y_dtype = np.zeros(n, dtype=np.int64), 0, torch.int64

    if isinstance(features, Matrix):
        store = _sparse_rows if features.sparse else _mapped_rows
        x_train, x_val, x_test = store(features, (train, val, test), scaling, impute, path)
        y_all = torch.as_tensor(np.asarray(targets), dtype=y_dtype)
        return Splits(
            NAME,
            x_train, y_all[train], x_val, y_all[val], x_test, y_all[test],
            feature_names=features.names,
            num_classes=num_classes,
            class_names=class_names,
        )  # fmt: skip

    values = features.to_numpy(dtype=np.float64)
    finite = np.isfinite(values) | np.isnan(values)
    if not finite.all():
        columns = features.columns[~finite.all(axis=0)]
        raise DataError(f"{path.name}: infinite values in column(s) {_preview(list(columns))}: replace them")
    missing = np.isnan(values)
    if missing.any():
        columns = list(features.columns[missing.any(axis=0)])
        if impute == "none":
            raise DataError(
                f"{path.name}: {int(missing.sum())} missing value(s) in {len(columns)} feature column(s) "
                f"(first: {_preview(columns, 3)}): fill them, or pass data.impute=train_mean"
            )
        empty = [c for c, seen in zip(features.columns, (~missing[train]).any(axis=0), strict=True) if not seen]
        if empty:
            raise DataError(f"{path.name}: column(s) {_preview(empty)} have no value in the training rows: drop them")
        values = np.where(missing, np.nanmean(values[train], axis=0), values)

    if scaling != "none":
        scaler = StandardScaler() if scaling == "standard" else MinMaxScaler()
        values = scaler.fit(values[train]).transform(values)

    return Splits.from_arrays(
        NAME,
        (values[train], targets[train]),
        (values[val], targets[val]),
        (values[test], targets[test]),
        feature_names=list(features.columns),
        num_classes=num_classes,
        class_names=class_names,
        y_dtype=y_dtype,
    )


def _sparse_rows(
    features: Matrix, parts: tuple[np.ndarray, ...], scaling: str, impute: str, path: Path
) -> tuple[SparseRows, ...]:
    """Sparse features, scaled on the training rows without centring (centring would make them dense)."""
    from sklearn.preprocessing import MaxAbsScaler

    x = features.values.astype(np.float32).tocsr()
    if not np.isfinite(x.data).all():
        bad = int((~np.isfinite(x.data)).sum())
        raise DataError(
            f"{path.name}: {bad} stored value(s) are NaN or infinite: a sparse matrix cannot be imputed here; "
            "replace them in the file"
        )
    if scaling == "standard":
        log.info("%s: sparse features are scaled to unit variance without centring (data.scaling=standard)", path.name)
        scaler: Any = StandardScaler(with_mean=False)
    elif scaling == "minmax":
        log.info("%s: sparse features are scaled by their largest absolute value (data.scaling=minmax)", path.name)
        scaler = MaxAbsScaler()
    else:
        scaler = None
    train = parts[0]
    if scaler is not None:
        x = scaler.fit(x[train]).transform(x).astype(np.float32)
    return tuple(SparseRows.from_scipy(x[rows]) for rows in parts)


def _mapped_rows(
    features: Matrix, parts: tuple[np.ndarray, ...], scaling: str, impute: str, path: Path
) -> tuple[MappedRows, ...]:
    """Memory-mapped features: checked and their scaling fitted block by block, then read per batch."""
    array = features.values
    train = parts[0]
    scaler: Any = None
    if scaling != "none":
        scaler = StandardScaler() if scaling == "standard" else MinMaxScaler()
    # One pass over the file: every row is checked, the training rows fit the scaler.
    is_train = np.zeros(array.shape[0], dtype=bool)
    is_train[train] = True
    for start, block in _blocks(array):
        finite = np.isfinite(block)
        if not finite.all():
            row = start + int(np.flatnonzero(~finite.all(axis=1))[0])
            raise DataError(
                f"{path.name}: NaN or infinite values (first in row {row}): a memory-mapped file is not imputed; "
                "fill them in the file, or load it into memory (data.mmap=false) with data.impute=train_mean"
            )
        if scaler is not None:
            rows = is_train[start : start + len(block)]
            if rows.any():
                scaler.partial_fit(block[rows])
    offset = scale = None
    if isinstance(scaler, StandardScaler):
        offset, scale = scaler.mean_, scaler.scale_
    elif isinstance(scaler, MinMaxScaler):
        offset = scaler.data_min_
        scale = np.where(scaler.data_range_ > 0, scaler.data_range_, 1.0)
    return tuple(MappedRows(array, rows, offset, scale) for rows in parts)


def _blocks(array: np.ndarray) -> Any:
    """``(first row, rows)`` blocks of a memory-mapped matrix, about 64 MiB each, as float64."""
    step = max(1, SCAN_BLOCK_ELEMENTS // max(array.shape[1], 1))
    for start in range(0, array.shape[0], step):
        yield start, np.asarray(array[start : start + step], dtype=np.float64)


def report_constant_columns(splits: Splits) -> None:
    """Constant columns are kept (the selector can learn to avoid them) but worth knowing about."""
    if not splits.in_memory:  # checking would read a large file once more, or densify sparse rows
        return
    x = torch.cat([splits.x_train, splits.x_val, splits.x_test])
    constant = torch.nonzero(x.amax(0) == x.amin(0)).flatten().tolist()
    if constant:
        names = [splits.feature_names[i] for i in constant]
        log.warning(
            "%d constant feature column(s) kept (first: %s): they carry no information", len(names), _preview(names)
        )


@register(
    NAME,
    k=50,
    batch_size=64,
    description="your own table or array file: data.path=FILE",
    path_options=("path", "labels"),
)
def build(
    paths: dict[str, Path],
    path: str | None = None,
    target: str | int | None = None,
    task: str = "classification",
    fractions: Sequence[float] = (0.6, 0.2, 0.2),
    split_seed: int = 42,
    split_column: str | int | None = None,
    scaling: str = "standard",
    impute: str = "none",
    drop_non_numeric: bool = False,
    scale_target: bool = True,
    header: bool | str | None = "auto",
    delimiter: str | None = None,
    labels: str | None = None,
    mmap: bool | str = "auto",
    mmap_above_gib: float = 1.0,
) -> Splits:
    """Splits of a table or array file (see the module docstring for the formats).

    ``target`` names the label column (an ``obs`` column of ``.h5ad``, an array of ``.npz`` and
    ``.mat``, where ``y`` / ``Y`` is the default), or its position; none means reconstruction.
    ``task`` decides what the target is: classes (strings, integers, booleans) or a number to
    regress on (standardised on the training rows unless ``scale_target=false``). Rows are split
    ``fractions`` (train, val, test), stratified by class, with ``split_seed`` (independent of the
    run's seed), unless ``split_column`` names a column of train / val / test values. ``scaling``
    (standard, minmax, none) and ``impute=train_mean`` are fitted on the training rows only.
    ``path`` is the file, relative to the working directory (the registry locates it in ``paths``);
    ``labels`` a file of one label per row, for files that hold features only (``.npy``, sparse
    ``.npz``, ``.mtx``). ``mmap``: memory-map a ``.npy`` (``auto``: when it is larger than
    ``mmap_above_gib`` GiB).
    """
    if mmap not in MMAP_CHOICES:
        raise ConfigError(f"data.mmap={mmap!r} is unknown: use auto, true or false")
    if not (isinstance(mmap_above_gib, int | float) and mmap_above_gib >= 0):
        raise ConfigError(f"data.mmap_above_gib={mmap_above_gib!r} must be a number of GiB >= 0")
    if task not in TASKS:
        raise ConfigError(f"task={task!r} is unknown for a table: use one of {', '.join(TASKS)}")
    if scaling not in SCALINGS:
        raise ConfigError(f"data.scaling={scaling!r} is unknown: use one of {', '.join(SCALINGS)}")
    if impute not in IMPUTES:
        raise ConfigError(f"data.impute={impute!r} is unknown: use one of {', '.join(IMPUTES)}")
    splits = read_and_split(
        paths["path"],
        target=target,
        task=task,
        fractions=_fractions(fractions),
        split_seed=int(split_seed),
        split_column=split_column,
        scaling=scaling,
        impute=impute,
        drop_non_numeric=bool(drop_non_numeric),
        scale_target=bool(scale_target),
        header=header,
        delimiter=delimiter,
        labels=paths.get("labels"),
        mmap=mmap,
        mmap_above_gib=float(mmap_above_gib),
    )
    report_constant_columns(splits)
    return splits


def datamodule(**kwargs: Any) -> Any:
    """``data=table``: an :class:`~ipcae.data.InMemoryDataModule` whose loader options are top-level keys.

    The config says ``data.path=...`` rather than ``data.options.path=...``; every key that is an
    option of :func:`load` goes into ``options``, the rest to the DataModule.
    """
    from omegaconf import DictConfig, ListConfig, OmegaConf

    from ipcae.data.datamodule import InMemoryDataModule

    def plain(value: Any) -> Any:
        return OmegaConf.to_container(value, resolve=True) if isinstance(value, DictConfig | ListConfig) else value

    options = dict(plain(kwargs.pop("options", None)) or {})
    for name in dataset_info(NAME).options:
        if name in kwargs:
            options[name] = plain(kwargs.pop(name))
    kwargs.setdefault("name", NAME)
    return InMemoryDataModule(options=options, **kwargs)
