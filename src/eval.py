"""Test a trained checkpoint: `python src/eval.py ckpt_path=outputs/.../checkpoints/epoch123.ckpt data=digits`.

Writes results.json (same fields as training, without the training times) into a new run directory.
"""

import os
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("IPCAE_ROOT", str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from ipcae.cli import run_job  # noqa: E402
from ipcae.training import evaluate  # noqa: E402


@hydra.main(version_base="1.3", config_path="../conf", config_name="eval")
@run_job
def main(cfg: DictConfig) -> None:
    evaluate(cfg)


if __name__ == "__main__":
    main()
