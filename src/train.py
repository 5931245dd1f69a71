"""Train a feature selector: `python src/train.py model=ipcae data=mice_protein`.

Configuration lives in conf/ (see conf/train.yaml); any value can be overridden on the command
line, and `-m` sweeps over comma-separated values.
"""

import os
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("IPCAE_ROOT", str(ROOT))
sys.path.insert(0, str(ROOT / "src"))  # runs from a checkout without `pip install -e .`
# ... and so do the processes it starts (submitit's jobs, launcher workers), which import this
# checkout's package rather than whichever one is installed.
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))

from ipcae.cli import run_job  # noqa: E402
from ipcae.objective import sweep_value  # noqa: E402
from ipcae.training import train  # noqa: E402


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def main(cfg: DictConfig) -> float:
    # What Hydra's sweepers optimise: optimized_metric (validation loss by default) in
    # optimized_direction; a failed job (run_job returns None) gives the worst value of that direction.
    return sweep_value(cfg, run_job(train)(cfg))


if __name__ == "__main__":
    main()
