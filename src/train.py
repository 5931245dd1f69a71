"""Train a feature selector: `python src/train.py model=ipcae data=mice_protein`.

Configuration lives in conf/ (see conf/train.yaml); any value can be overridden on the command
line, and `-m` sweeps over comma-separated values. Installed, the same is `ipcae-train`.
"""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("IPCAE_ROOT", str(ROOT))
sys.path.insert(0, str(ROOT / "src"))  # runs from a checkout without `pip install -e .`
# ... and so do the processes it starts (submitit's jobs, launcher workers), which import this
# checkout's package rather than whichever one is installed.
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))

from ipcae.commands import train  # noqa: E402

if __name__ == "__main__":
    train()
