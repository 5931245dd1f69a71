"""Fetching files over HTTP(S): streamed to a temporary file, verified, then renamed into place.

Only the standard library is used (urllib), so downloading adds no dependency. Three guarantees:

- a file appears under its final name only after it has been verified (SHA-256 or a content
  check), so an interrupted or corrupt transfer never leaves a file that a later run would trust,
  and an existing good file is never replaced by a bad one;
- connection-level failures are retried a bounded number of times with exponential backoff,
  "not found" answers are not retried (the caller then tries its next source);
- archives are extracted only after every member name has been checked: a member that would land
  outside the target folder (``../x``, ``/etc/x``) makes the whole archive refused.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import shutil
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path, PurePosixPath

from ipcae import __version__
from ipcae.errors import DataError

TRIES = 3
# Seconds before the 2nd try; doubled for each further try.
BACKOFF_S = 0.5
TIMEOUT_S = 60.0
CHUNK = 1 << 20
USER_AGENT = f"ipcae/{__version__} (python-urllib)"
# Answers that mean "this server does not have the file": retrying cannot help.
NOT_FOUND_CODES = frozenset({401, 403, 404, 410})

Check = Callable[[Path], None]


class TransferError(DataError):
    """The file could not be obtained from this URL (network, server): another source may work.

    Integrity failures (checksum mismatch, unsafe archive) are plain :class:`DataError` instead,
    because trying further sources would hide that a source serves wrong data.
    """


class NotFoundError(TransferError):
    """The server answered, and it does not have the file."""


def url_join(base: str, relpath: str) -> str:
    """``base`` + ``relpath`` with every path component percent-encoded (``UCI HAR Dataset``)."""
    return base.rstrip("/") + "/" + urllib.parse.quote(relpath.replace(os.sep, "/"))


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None) or exc
    return " ".join(str(reason).split()) or type(exc).__name__


def fetch_to_temp(url: str, folder: Path, *, tries: int = TRIES, timeout: float = TIMEOUT_S) -> tuple[Path, str]:
    """Stream ``url`` into a new temporary file in ``folder``; return its path and SHA-256.

    The temporary file sits next to the final location so that the later rename is atomic. A body
    shorter than its Content-Length (a connection cut mid-transfer) counts as a connection error.
    """
    folder.mkdir(parents=True, exist_ok=True)
    last: BaseException | None = None
    for attempt in range(tries):
        if attempt:
            time.sleep(BACKOFF_S * 2 ** (attempt - 1))
        fd, name = tempfile.mkstemp(prefix=".download-", suffix=".part", dir=folder)
        tmp = Path(name)
        try:
            digest = hashlib.sha256()
            with os.fdopen(fd, "wb") as out:
                request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
                with urllib.request.urlopen(request, timeout=timeout) as response:
                    length = response.headers.get("Content-Length")
                    received = 0
                    while chunk := response.read(CHUNK):
                        out.write(chunk)
                        digest.update(chunk)
                        received += len(chunk)
            if length is not None and length.isdigit() and received != int(length):
                raise http.client.IncompleteRead(b"", int(length) - received)
            return tmp, digest.hexdigest()
        except urllib.error.HTTPError as exc:
            tmp.unlink(missing_ok=True)
            if exc.code in NOT_FOUND_CODES:
                raise NotFoundError(f"{url}: HTTP {exc.code} {exc.reason}") from None
            last = exc  # 5xx and the like: the server may recover
        except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
            # URLError covers refused connections and unknown hosts; HTTPException and OSError
            # (timeouts, resets) cover transfers that break off halfway.
            tmp.unlink(missing_ok=True)
            last = exc
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    if isinstance(last, http.client.IncompleteRead):
        why = f"transfer cut short ({last.expected} bytes missing)"
    elif isinstance(last, urllib.error.HTTPError):
        why = f"HTTP {last.code} {last.reason}"
    else:
        why = _reason(last) if last else "no attempt made"
    raise TransferError(f"{url}: {why} ({tries} tries)")


def verify_file(
    path: Path, *, sha256: str | None = None, check: Check | None = None, digest: str | None = None
) -> None:
    """Raise DataError unless ``path`` has the expected SHA-256 and passes ``check``."""
    if sha256 is not None:
        actual = digest or file_sha256(path)
        if actual != sha256:
            raise DataError(f"checksum mismatch: expected sha256 {sha256}, got {actual}")
    if check is not None:
        check(path)


def download(
    url: str,
    dest: Path,
    *,
    sha256: str | None = None,
    check: Check | None = None,
    tries: int = TRIES,
    timeout: float = TIMEOUT_S,
) -> Path:
    """Download ``url`` to ``dest``: temporary file, verification, then an atomic rename.

    On any failure the temporary file is deleted and ``dest`` is left as it was.
    """
    tmp, digest = fetch_to_temp(url, dest.parent, tries=tries, timeout=timeout)
    try:
        try:
            verify_file(tmp, sha256=sha256, check=check, digest=digest)
        except DataError as exc:
            raise DataError(f"{url}: {exc}; the download was discarded") from None
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


# --- archives --------------------------------------------------------------------------------------

_SKIP_PREFIXES = ("__MACOSX/",)  # macOS resource forks that zips made on a Mac carry
_COMPRESSED = (".Z", ".gz")


def check_members(names: Iterable[str], folder: Path, archive: str) -> None:
    """Refuse the archive if any member would resolve to a path outside ``folder``."""
    root = folder.resolve()
    for name in names:
        target = (root / name).resolve()
        if target != root and not target.is_relative_to(root):
            raise DataError(f"refusing archive {archive}: member {name!r} would be written outside {folder}")


def _match(member: str, wanted: str) -> bool:
    """Whether archive member ``member`` is ``wanted``, possibly under leading folders."""
    return member == wanted or member.endswith("/" + wanted)


def _write_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, folder: Path, decompress: str | None) -> Path:
    """Copy one member into a new temporary file in ``folder``, decompressing ``.Z`` / ``.gz``."""
    fd, name = tempfile.mkstemp(prefix=".extract-", suffix=".part", dir=folder)
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as out, zf.open(info) as src:
            if decompress == ".Z":
                out.write(lzw_decompress(src.read()))
            elif decompress == ".gz":
                with gzip.GzipFile(fileobj=src) as unzipped:
                    shutil.copyfileobj(unzipped, out, CHUNK)
            else:
                shutil.copyfileobj(src, out, CHUNK)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def extract_members(archive: Path, wanted: list[str], folder: Path, *, label: str | None = None) -> dict[str, Path]:
    """Extract the members named ``wanted`` from a zip into temporary files in ``folder``.

    A wanted name matches a member with that path, possibly below leading folders, or its ``.Z`` /
    ``.gz`` compressed form (decompressed on the way). Zips nested in the archive (the UCI HAR
    download holds ``UCI HAR Dataset.zip``) are searched for what the outer one lacks. Returns
    ``{wanted name: temporary file}`` for what was found; the caller verifies and renames them.
    """
    label = label or archive.name
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(f"{label} is not a readable zip archive ({_reason(exc)})") from None
    found: dict[str, Path] = {}
    try:
        with zf:
            infos = [i for i in zf.infolist() if not i.filename.startswith(_SKIP_PREFIXES)]
            check_members([i.filename for i in zf.infolist()], folder, label)
            files = [i for i in infos if not i.is_dir()]
            for name in wanted:
                for suffix in ("", *_COMPRESSED):
                    info = next((i for i in files if _match(i.filename, name + suffix)), None)
                    if info is not None:
                        found[name] = _write_member(zf, info, folder, suffix or None)
                        break
            rest = [n for n in wanted if n not in found]
            for info in files:
                if not rest:
                    break
                if PurePosixPath(info.filename).suffix.lower() != ".zip":
                    continue
                inner = _write_member(zf, info, folder, None)
                try:
                    found.update(extract_members(inner, rest, folder, label=f"{label}/{info.filename}"))
                finally:
                    inner.unlink(missing_ok=True)
                rest = [n for n in wanted if n not in found]
    except BaseException:
        for tmp in found.values():
            tmp.unlink(missing_ok=True)
        raise
    return found


# --- Unix compress (.Z) ----------------------------------------------------------------------------


def lzw_decompress(data: bytes) -> bytes:
    """Decode a Unix ``compress`` (``.Z``) stream; pure Python, about 1 s per 2 MB of input.

    UCI's ISOLET files are ``.Z`` and neither Python's standard library nor the project's
    dependencies read that format. Follows ncompress: codes of 9..maxbits bits, LSB first, read in
    groups of 8; a width change or a CLEAR code discards the rest of the current group.
    """
    if len(data) < 3 or data[:2] != b"\x1f\x9d":
        raise DataError("not a Unix compress (.Z) stream")
    maxbits, block_mode = data[2] & 0x1F, bool(data[2] & 0x80)
    if not 9 <= maxbits <= 16:
        raise DataError(f"unsupported .Z stream: {maxbits}-bit codes")
    maxmaxcode = 1 << maxbits
    first_free = 257 if block_mode else 256
    table: list[bytes] = [bytes([i]) for i in range(256)] + ([b""] if block_mode else [])
    out: list[bytes] = []
    n_bits, maxcode = 9, (1 << 9) - 1
    prev: bytes | None = None
    pos, size = 3, len(data)
    while pos < size:
        chunk = data[pos : pos + n_bits]
        pos += len(chunk)
        bits = int.from_bytes(chunk, "little")
        mask = (1 << n_bits) - 1
        for i in range((len(chunk) * 8) // n_bits):
            code = (bits >> (i * n_bits)) & mask
            if prev is None:  # first code of the stream or after CLEAR: a literal
                if code > 255:
                    raise DataError("corrupt .Z stream: first code is not a literal")
                prev = table[code]
                out.append(prev)
                continue
            if code == 256 and block_mode:
                del table[first_free:]
                prev = None
                n_bits, maxcode = 9, (1 << 9) - 1
                break  # the rest of this group is padding
            free = len(table)
            if code < free:
                entry = table[code]
            elif code == free:  # the KwKwK case: the code being defined right now
                entry = prev + prev[:1]
            else:
                raise DataError("corrupt .Z stream: code out of range")
            out.append(entry)
            if free < maxmaxcode:
                table.append(prev + entry[:1])
            prev = entry
            if len(table) > maxcode and n_bits < maxbits:
                n_bits += 1
                maxcode = maxmaxcode if n_bits == maxbits else (1 << n_bits) - 1
                break  # codes of the new width start at the next group
    return b"".join(out)
