"""The installed commands work outside a checkout: a non-editable wheel of the project, installed into a
folder of its own, run from another directory with the configs it ships."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """The wheel installed into a bare target folder (its dependencies come from this environment)."""
    base = tmp_path_factory.mktemp("installed")
    wheels, target = base / "wheels", base / "site"
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels)]
    subprocess.run([*build, str(ROOT)], check=True, capture_output=True, timeout=600)
    (wheel,) = wheels.glob("ipcae-*.whl")
    install = [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)]
    subprocess.run(install, check=True, capture_output=True, timeout=600)
    # Nothing of the checkout: the installed package first, no IPCAE_ROOT.
    env = {k: v for k, v in os.environ.items() if k != "IPCAE_ROOT"}
    env.update(PYTHONPATH=str(target), WANDB_MODE="offline")
    return target, env


def test_the_wheel_ships_the_configs(installed: tuple[Path, dict[str, str]]) -> None:
    target, _ = installed
    conf = target / "ipcae" / "conf"
    assert (conf / "train.yaml").is_file() and not conf.is_symlink()
    assert {p.stem for p in (conf / "model").glob("*.yaml")} >= {"ipcae", "cae", "stg"}


def test_installed_commands_run_from_any_directory(installed: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    target, env = installed
    work = tmp_path / "elsewhere"
    work.mkdir()
    run = {"cwd": work, "env": env, "capture_output": True, "text": True, "timeout": 600}
    proc = subprocess.run([str(target / "bin" / "ipcae-train"), "trainer.max_epochs=2", "threads=1"], **run)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (results,) = (work / "outputs").rglob("results.json")
    assert json.loads(results.read_text())["dataset"] == "digits"
    # python -m ipcae dispatches to the same commands; the report reads what the run wrote.
    proc = subprocess.run([sys.executable, "-m", "ipcae", "report", "outputs", "--out", "report.md"], **run)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "| IP-CAE [trainer.max_epochs=2] | Digits |" in (work / "report.md").read_text()
    ckpt = next((work / "outputs").rglob("*.ckpt"))
    proc = subprocess.run([str(target / "bin" / "ipcae-eval"), f"ckpt_path={ckpt}", "data=digits"], **run)
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = subprocess.run([sys.executable, "-m", "ipcae"], **run)
    assert proc.returncode == 2 and "usage: python -m ipcae" in proc.stderr
