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


@hydra.main(version_base="1.3", config_path=CONF, config_name="train")
def train(cfg: DictConfig) -> float:
    """``ipcae-train``: fit a selector and decoder, test, write results.json.

    Returns what Hydra's sweepers optimise: ``optimized_metric`` (validation loss by default) in
    ``optimized_direction``; a failed job (``run_job`` returns None) gives the worst value.
    """
    from ipcae.objective import sweep_value
    from ipcae.training import train as train_run

    return sweep_value(cfg, run_job(train_run)(cfg))


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
