"""A dataset's original files: the local copy first, else a verified download.

Every dataset with files declares them once (:class:`DataSource`, registered by its loader module):
where each file lives under a data directory, which other names are accepted locally (a gzipped
text file), its SHA-256 when the canonical file's hash is known or else a content check, and where
it comes from (direct URLs and/or a zip archive).

Lookup order for each file: the data directory (``$IPCAE_DATA_DIR``), then the writable fallback
``<cache root>/data`` (``$IPCAE_CACHE_DIR`` or ``~/.cache/ipcae``). Missing files are downloaded
into the data directory if it is writable, otherwise into the fallback (the shared copy of the
benchmark files is read-only). ``IPCAE_DATA_MIRROR`` (or ``mirror=``) replaces the canonical
locations by a server that holds the same relative layout as a data directory; for archive-based
datasets the mirror may instead hold the archive as ``<folder>/<archive name>``.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from ipcae.atomic import write_json_atomic
from ipcae.data import download as dl
from ipcae.errors import DataError

MIRROR_ENV = "IPCAE_DATA_MIRROR"
CACHE_ENV = "IPCAE_CACHE_DIR"


@dataclass(frozen=True)
class DataFile:
    """One original file of a dataset."""

    # Location under a data directory, e.g. "mnist/train-images-idx3-ubyte.gz".
    relpath: str
    # Other accepted names under the data directory, e.g. the ".gz" of a large text file.
    alternatives: tuple[str, ...] = ()
    # SHA-256 of the canonical file at ``relpath``, where it is known.
    sha256: str | None = None
    # Content check (raises DataError); accepts any of the accepted forms (plain or gzipped).
    check: Callable[[Path], None] | None = None
    # Canonical direct download locations, tried in order.
    urls: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return (self.relpath, *self.alternatives)


@dataclass(frozen=True)
class DataSource:
    """Everything about where a dataset's files come from and how they are verified."""

    name: str
    # Top folder under the data directory (every relpath starts with it).
    folder: str
    files: tuple[DataFile, ...]
    # Canonical zip archive holding the files that have no direct URL (members are matched by
    # their path below ``folder``, possibly under leading folders, possibly ``.Z`` / ``.gz``).
    archive_url: str | None = None
    # Where a person can read about the dataset.
    homepage: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def archive_relpath(self) -> str | None:
        """Where a mirror may hold the archive."""
        if self.archive_url is None:
            return None
        return f"{self.folder}/{PurePosixPath(self.archive_url).name}"

    def file(self, relpath: str) -> DataFile:
        for f in self.files:
            if relpath in f.names:
                return f
        raise KeyError(relpath)


_SOURCES: dict[str, DataSource] = {}


def register_source(source: DataSource) -> DataSource:
    """Declare a dataset's files (called by the loader modules at import time)."""
    for f in source.files:
        for name in f.names:
            if not name.startswith(source.folder + "/"):
                raise ValueError(f"{source.name}: {name} is not under {source.folder}/")
    _SOURCES[source.name] = source
    return source


def sources() -> dict[str, DataSource]:
    return dict(_SOURCES)


def data_source(name: str) -> DataSource:
    try:
        return _SOURCES[name]
    except KeyError:
        raise DataError(f"{name!r} has no downloadable files (known: {', '.join(sorted(_SOURCES))})") from None


# --- locations -------------------------------------------------------------------------------------


def cache_root() -> Path:
    """``$IPCAE_CACHE_DIR``, else ``~/.cache/ipcae``: holds ``data/`` (downloads) and ``processed/``."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "ipcae"


def fallback_data_dir() -> Path:
    return cache_root() / "data"


def default_mirror() -> str | None:
    return os.environ.get(MIRROR_ENV) or None


def is_writable(path: Path) -> bool:
    """Whether files can be created in ``path`` (or in the folder that would hold it).

    A folder without any write permission bit counts as read-only even for root, who could write
    anyway: a data directory made read-only on purpose (the shared benchmark copy) is left alone.
    """
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            return False
        probe = probe.parent
    if not probe.is_dir():
        return False
    write_bits = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH
    return os.access(probe, os.W_OK | os.X_OK) and bool(probe.stat().st_mode & write_bits)


def search_roots(data_dir: Path) -> list[Path]:
    roots = [Path(data_dir).expanduser(), fallback_data_dir()]
    unique: list[Path] = []
    for root in roots:
        if all(os.path.abspath(root) != os.path.abspath(u) for u in unique):
            unique.append(root)
    return unique


def find_local(source: DataSource, roots: list[Path]) -> tuple[dict[str, Path], list[DataFile]]:
    """``({relpath: existing path}, [missing files])``; the first root and the first name win."""
    found: dict[str, Path] = {}
    missing: list[DataFile] = []
    for f in source.files:
        path = next((r / n for r in roots for n in f.names if (r / n).is_file()), None)
        if path is None:
            missing.append(f)
        else:
            found[f.relpath] = path
    return found, missing


def target_root(source: DataSource, roots: list[Path]) -> Path:
    """Where downloads of ``source`` go: the data directory if writable, else the fallback."""
    for root in roots:
        if is_writable(root / source.folder):
            return root
    places = ", ".join(str(r) for r in roots)
    raise DataError(f"{source.name}: no writable place for downloads ({places}): set {CACHE_ENV} to a writable folder")


# --- downloading -----------------------------------------------------------------------------------


def _download_one(f: DataFile, name: str, url: str, root: Path) -> None:
    # The SHA-256 belongs to the canonical name; other accepted forms get the content check.
    sha = f.sha256 if name == f.relpath else None
    dl.download(url, root / name, sha256=sha, check=f.check)


def _download_archive(source: DataSource, files: list[DataFile], url: str, root: Path) -> None:
    """Fetch a zip, extract the wanted files, verify all of them, then move them into place."""
    folder = root / source.folder
    archive, _ = dl.fetch_to_temp(url, folder)
    extracted: dict[str, Path] = {}
    try:
        prefix = source.folder + "/"
        wanted = {f.relpath[len(prefix) :]: f for f in files}
        extracted = dl.extract_members(archive, list(wanted), folder, label=url)
        for member, tmp in extracted.items():
            f = wanted[member]
            try:
                dl.verify_file(tmp, sha256=f.sha256, check=f.check)
            except DataError as exc:
                raise DataError(f"{url}: {member}: {exc}; the download was discarded") from None
        for member, tmp in extracted.items():
            dest = root / wanted[member].relpath
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, dest)
        absent = sorted(set(wanted) - set(extracted))
        if absent:
            raise dl.NotFoundError(f"{url}: archive lacks {', '.join(absent)}")
    finally:
        archive.unlink(missing_ok=True)
        for tmp in extracted.values():
            tmp.unlink(missing_ok=True)


def fetch_missing(source: DataSource, missing: list[DataFile], root: Path, mirror: str | None) -> list[str]:
    """Try to download ``missing`` into ``root``; return why each failed attempt failed.

    Transfer problems are collected (the next source is tried); integrity problems (checksum
    mismatch, content check, unsafe archive) raise at once.
    """
    errors: list[str] = []
    todo = list(missing)

    def attempt(fn: Callable[[], None]) -> dl.TransferError | None:
        try:
            fn()
            return None
        except dl.TransferError as exc:
            errors.append(str(exc))
            return exc

    if mirror:
        reachable = True
        for f in list(todo):
            for name in f.names:
                error = attempt(lambda f=f, name=name: _download_one(f, name, dl.url_join(mirror, name), root))
                if error is None:
                    todo.remove(f)
                    break
                if not isinstance(error, dl.NotFoundError):
                    reachable = False  # the server itself failed: do not try every other name
                    break
            if not reachable:
                break
        if todo and reachable and source.archive_relpath:
            url = dl.url_join(mirror, source.archive_relpath)
            if attempt(lambda: _download_archive(source, todo, url, root)) is None:
                todo = []
        return errors if todo else []

    for f in list(todo):
        for url in f.urls:
            if attempt(lambda f=f, url=url: _download_one(f, f.relpath, url, root)) is None:
                todo.remove(f)
                break
    if todo and source.archive_url:
        url = source.archive_url
        if attempt(lambda: _download_archive(source, todo, url, root)) is None:
            todo = []
    return errors if todo else []


# --- the entry points ------------------------------------------------------------------------------


def ensure_files(
    name: str,
    data_dir: str | Path,
    *,
    mirror: str | None = None,
    download: bool = True,
) -> dict[str, Path]:
    """Paths of all of ``name``'s files, ``{relpath: path}``; missing ones are downloaded first.

    Fails with one line that names the missing files, the URLs tried and where to put the files.
    """
    source = data_source(name)
    roots = search_roots(Path(data_dir))
    found, missing = find_local(source, roots)
    if not missing:
        verify_once(name, found)
        return found
    mirror = mirror or default_mirror()
    errors: list[str] = []
    if download:
        root = target_root(source, roots)
        try:
            errors = fetch_missing(source, missing, root, mirror)
        except DataError as exc:  # an integrity failure: say which dataset it was about
            raise DataError(f"{name}: {exc}") from None
        found, missing = find_local(source, roots)
        if not missing:
            verify_once(name, found)
            return found
    looked = " and ".join(str(r) for r in roots)
    if errors:
        tried = f"; download failed: {'; '.join(dict.fromkeys(errors))}"
    else:
        tried = "; downloads disabled" if not download else "; no download source is known"
    raise DataError(
        f"{name}: missing {', '.join(f.relpath for f in missing)} (looked in {looked}){tried}; "
        f"put the files under {roots[0]} with that layout, or set {MIRROR_ENV} to a server that has it"
    )


def verify_files(name: str, found: dict[str, Path]) -> list[str]:
    """Check local files as a download would be checked; return a note per file ("sha256", "content")."""
    source = data_source(name)
    notes = []
    for f in source.files:
        path = found[f.relpath]
        # A local file in another accepted form (gzipped) cannot match the canonical hash.
        sha = f.sha256 if path.as_posix().endswith(f.relpath) else None
        try:
            dl.verify_file(path, sha256=sha, check=f.check)
        except DataError as exc:
            raise DataError(f"{name}: {path} failed verification: {exc}; delete it to download it again") from None
        notes.append("sha256" if sha else "content" if f.check else "present")
    return notes


VERIFIED_FILE = "verified.json"


def verify_once(name: str, found: dict[str, Path]) -> None:
    """Local files whose canonical SHA-256 is known are checked against it, once per size and mtime.

    So that another dataset's files under this one's name (Fashion-MNIST under ``mnist/``) or a
    truncated download stop the run with the file's name instead of training on it. The result is
    remembered in ``<cache root>/verified.json`` keyed by path, size and mtime: a file is hashed
    once, not every run, and again when it changes. Files without a known hash (other accepted
    forms, the datasets checked by content) are left to their loaders: small copies in the original
    format are a supported way to test (``python -m ipcae.data.fetch`` runs the content checks).
    """
    source = data_source(name)
    memo_path = cache_root() / VERIFIED_FILE
    try:
        memo = json.loads(memo_path.read_text())
        memo = memo if isinstance(memo, dict) else {}
    except (OSError, ValueError):
        memo = {}
    changed = False
    for f in source.files:
        path = found[f.relpath]
        # The SHA-256 belongs to the canonical name; a gzipped alternative cannot match it.
        sha = f.sha256 if path.as_posix().endswith(f.relpath) else None
        if sha is None:
            continue
        st = path.stat()
        stamp = [st.st_size, st.st_mtime_ns, sha]
        key = os.path.abspath(path)
        if memo.get(key) == stamp:
            continue
        try:
            dl.verify_file(path, sha256=sha)
        except DataError as exc:
            raise DataError(
                f"{name}: {path} failed verification: {exc}; replace it by the original file (or delete it "
                "to download it again)"
            ) from None
        memo[key], changed = stamp, True
    if changed:
        # A read-only cache only costs the check again next time.
        with contextlib.suppress(OSError):
            write_json_atomic(memo_path, memo)


def open_maybe_compressed(path: Path) -> BinaryIO:
    """``path`` opened for binary reading, gunzipped or LZW-decoded (``.Z``) if it is compressed.

    Decided by the magic bytes, not the name, so that checks also work on temporary files.
    """
    with open(path, "rb") as f:
        magic = f.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rb")
    if magic == b"\x1f\x9d":
        return io.BytesIO(dl.lzw_decompress(path.read_bytes()))
    return open(path, "rb")
