"""The per-run ``results.json``: what a run selected and how well, written atomically."""

from __future__ import annotations

import json
import os
import platform
import tempfile
from pathlib import Path
from typing import Any

import lightning
import torch

import ipcae


def versions() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "lightning": lightning.__version__,
        "ipcae": ipcae.__version__,
    }


def portable(value: Any, roots: dict[str, str]) -> Any:
    """``value`` with absolute machine paths replaced by ``<name>`` placeholders.

    ``roots`` maps a placeholder name to a path (e.g. ``{"output_dir": "/home/me/ipcae/outputs/..."}``);
    longer paths are replaced first. Results are compared and committed across machines, so they
    must not carry one machine's directories.
    """
    ordered = sorted(((p, n) for n, p in roots.items() if p), key=lambda item: -len(item[0]))
    if isinstance(value, str):
        for path, name in ordered:
            value = value.replace(path, f"<{name}>")
        return value
    if isinstance(value, dict):
        return {k: portable(v, roots) for k, v in value.items()}
    if isinstance(value, list):
        return [portable(v, roots) for v in value]
    return value


def machine_roots(paths: dict[str, Any] | None = None) -> dict[str, str]:
    """The directories that ``portable`` hides: the run's paths and the user's home."""
    paths = paths or {}
    roots = {name: str(paths[name]) for name in ("output_dir", "log_dir", "data_dir", "root_dir") if paths.get(name)}
    roots["home"] = str(Path.home())
    return roots


def write_json_atomic(path: str | Path, data: Any) -> Path:
    """Write ``data`` as JSON to ``path`` via a temporary file and a rename.

    Readers never see a half-written file, and an existing file is only replaced by a complete one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2, sort_keys=False)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_results(path: str | Path) -> dict[str, Any]:
    with open(path) as f:
        return json.load(f)
