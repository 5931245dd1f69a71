"""Shared fixtures: the real dataset directory and Hydra config composition."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("IPCAE_ROOT", str(ROOT))
os.environ.setdefault("WANDB_MODE", "offline")
sys.path.insert(0, str(ROOT / "src"))


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    """``$IPCAE_DATA_DIR`` with the original benchmark files.

    Tests that use it are skipped when it is unset, except under ``IPCAE_REQUIRE_DATA=1`` (CI),
    where a missing directory is a failure.
    """
    value = os.environ.get("IPCAE_DATA_DIR")
    if value and Path(value).is_dir():
        return Path(value)
    message = f"IPCAE_DATA_DIR={value!r} does not point at the benchmark files"
    if os.environ.get("IPCAE_REQUIRE_DATA") == "1":
        pytest.fail(message)
    pytest.skip(message)
