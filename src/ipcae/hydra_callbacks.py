"""Hydra callbacks: a sweep reports its failed jobs at the end and exits non-zero."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from ipcae.store import FAILED_FILE


class SweepFailureSummary(Callback):
    """After a multirun, lists the jobs that wrote ``failed.json`` and exits with 1 if any did.

    Failed jobs do not stop the sweep (see ``ipcae.cli.run_job``), so without this a sweep with
    failures would look like a success.
    """

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        failures = sorted(Path(config.hydra.sweep.dir).glob(f"*/{FAILED_FILE}"))
        if not failures:
            return
        print(f"{len(failures)} job(s) of the sweep failed:", file=sys.stderr)
        for path in failures:
            error = json.loads(path.read_text())["error"]
            print(f"  {path.parent}: {error}", file=sys.stderr)
        sys.exit(1)
