"""The per-run ``results.json``: what a run selected and how well, written atomically."""

from __future__ import annotations

import csv
import io
import json
import os
import platform
import tempfile
from pathlib import Path
from typing import Any

import ipcae


def versions() -> dict[str, str]:
    # Imported here: the report command writes files with this module and needs neither.
    import lightning
    import torch

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


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` via a temporary file in the same folder and a rename.

    Readers never see a half-written file, and an existing file is only replaced by a complete one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", newline="") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json_atomic(path: str | Path, data: Any) -> Path:
    """Write ``data`` as JSON to ``path`` atomically (see :func:`write_text_atomic`)."""
    return write_text_atomic(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def write_selected_features(
    path: str | Path, indices: list[int], names: list[str], probabilities: list[float] | None = None
) -> Path:
    """``selected_features.csv``: one line per selector row (row, index, name, probability), atomically.

    ``probability`` is how sure the selector is of its pick (the selector's ``selected_probabilities()``);
    empty for methods that only rank features.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["row", "index", "name", "probability"])
    for row, (index, name) in enumerate(zip(indices, names, strict=True)):
        probability = "" if probabilities is None else f"{probabilities[row]:.6g}"
        writer.writerow([row, index, name, probability])
    return write_text_atomic(path, buffer.getvalue())


def read_results(path: str | Path) -> dict[str, Any]:
    with open(path) as f:
        return json.load(f)
