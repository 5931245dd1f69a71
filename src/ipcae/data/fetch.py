"""Fetch (or find) and verify the benchmark datasets' original files.

    python -m ipcae.data.fetch --all
    python -m ipcae.data.fetch mnist isolet --data-dir /data/ipcae --mirror http://host/ipcae/

Prints one status line per dataset and exits with 1 if any dataset failed.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from ipcae.data import available_datasets, default_data_dir
from ipcae.data.files import default_mirror, ensure_files, sources, verify_files
from ipcae.errors import IpcaeError

# Datasets that ship with a library and have no files to fetch.
BUNDLED = {"digits": "bundled with scikit-learn, nothing to fetch"}


def fetch_one(name: str, data_dir: Path, mirror: str | None, download: bool = True) -> tuple[bool, str]:
    """``(ok, message)`` for one dataset: its files present (downloaded if needed) and verified."""
    if name in BUNDLED:
        return True, BUNDLED[name]
    started = time.perf_counter()
    try:
        found = ensure_files(name, data_dir, mirror=mirror, download=download)
        notes = verify_files(name, found)
    except IpcaeError as exc:
        return False, str(exc)
    folders = sorted({str(p.parent) for p in found.values()})
    kinds = ", ".join(f"{notes.count(k)} {k}" for k in ("sha256", "content", "present") if notes.count(k))
    seconds = time.perf_counter() - started
    return True, f"{len(found)} files verified ({kinds}) in {'; '.join(folders)} [{seconds:.1f} s]"


def main(argv: Sequence[str] | None = None) -> int:
    datasets = [n for n in available_datasets() if n in sources() or n in BUNDLED]
    parser = argparse.ArgumentParser(prog="python -m ipcae.data.fetch", description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", metavar="DATASET", help=f"datasets to fetch: {', '.join(datasets)}")
    parser.add_argument("--all", action="store_true", help="every dataset")
    parser.add_argument("--data-dir", type=Path, default=None, help="default: $IPCAE_DATA_DIR or ~/.cache/ipcae/data")
    parser.add_argument("--mirror", default=None, help="base URL with the data directory's layout ($IPCAE_DATA_MIRROR)")
    parser.add_argument("--no-download", action="store_true", help="only check the local files")
    args = parser.parse_args(argv)
    if args.all == bool(args.names):
        parser.error("name the datasets to fetch, or pass --all")
    unknown = [n for n in args.names if n not in datasets]
    if unknown:
        parser.error(f"unknown dataset {unknown[0]!r}: choose from {', '.join(datasets)}")
    names = datasets if args.all else list(dict.fromkeys(args.names))
    data_dir = args.data_dir.expanduser() if args.data_dir else default_data_dir()
    mirror = args.mirror or default_mirror()
    width = max(len(n) for n in names)
    failed = 0
    for name in names:
        ok, message = fetch_one(name, data_dir, mirror, download=not args.no_download)
        failed += not ok
        print(f"{name:<{width}}  {'ok' if ok else 'FAILED'}  {message}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
