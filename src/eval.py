"""Test a trained checkpoint: `python src/eval.py ckpt_path=outputs/.../checkpoints/epoch123.ckpt data=digits`.

Writes results.json (same fields as training, without the training times) into a new run directory.
Installed, the same is `ipcae-eval`.
"""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("IPCAE_ROOT", str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from ipcae.commands import evaluate  # noqa: E402

if __name__ == "__main__":
    evaluate()
