"""The installed commands: ``ipcae-train``, ``ipcae-eval``, ``ipcae-report`` and ``python -m ipcae``.

They run from any directory with the configs shipped inside the package (``ipcae/conf``, the
repository's ``conf/``); outputs go under the current directory's ``outputs/``. Add config folders
of your own with Hydra's ``--config-dir DIR`` or ``hydra.searchpath=[file://DIR]``. In a checkout,
``python src/train.py`` and ``python src/eval.py`` do the same.
"""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from ipcae.cli import run_job

# An absolute folder, so that Hydra reads the files the package ships rather than importing a
# config package.
CONF = str(Path(__file__).resolve().parent / "conf")


def objective(results: dict) -> float | None:
    """What a Hydra sweeper optimises: the test metric, if any."""
    test = results.get("test", {})
    return test.get("accuracy", test.get("mse"))


@hydra.main(version_base="1.3", config_path=CONF, config_name="train")
@run_job
def train(cfg: DictConfig) -> float | None:
    """``ipcae-train``: fit a selector and decoder, test, write results.json."""
    from ipcae.training import train as train_run

    return objective(train_run(cfg))


@hydra.main(version_base="1.3", config_path=CONF, config_name="eval")
@run_job
def evaluate(cfg: DictConfig) -> None:
    """``ipcae-eval``: test a trained checkpoint."""
    from ipcae.training import evaluate as evaluate_run

    evaluate_run(cfg)


def report() -> None:
    """``ipcae-report``: the results report (``python -m ipcae.report``)."""
    from ipcae.report import main

    main()


COMMANDS = {"train": train, "eval": evaluate, "report": report}


def main() -> None:
    """``python -m ipcae train|eval|report [arguments]``."""
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        print(f"usage: python -m ipcae {{{','.join(COMMANDS)}}} [arguments]", file=sys.stderr)
        raise SystemExit(2)
    command = sys.argv.pop(1)
    sys.argv[0] = f"ipcae-{command}"
    COMMANDS[command]()
