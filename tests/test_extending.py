"""The README's "Extending" recipes, followed from outside the package: a selector and a dataset
written in the user's own modules, each plus one YAML, train from the CLI and get their own rows in
the report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SELECTOR_MODULE = '''
import torch
from torch import nn

from ipcae.selectors import FeatureSelector


class ScoredTopK(FeatureSelector):
    """One learned score per feature; the K best-scored columns, scaled by their sigmoid."""

    def __init__(self, num_features: int, k: int, init_std: float = 0.1) -> None:
        super().__init__(num_features, k)
        self.scores = nn.Parameter(init_std * torch.randn(num_features))

    def selected_indices(self) -> torch.Tensor:
        return torch.topk(self.scores, self.k).indices

    def forward_train(self, x: torch.Tensor) -> torch.Tensor:
        idx = self.selected_indices()
        return x[:, idx] * torch.sigmoid(self.scores[idx])

    def diagnostics(self) -> dict:
        return {"score_spread": self.scores.std()}
'''

DATASET_MODULE = """
import numpy as np

from ipcae.data import Splits, register


@register("two_moons_noise", k=2, batch_size=32, description="2 informative features among 20")
def build(paths, noise: float = 0.1) -> Splits:
    from sklearn.datasets import make_moons

    x, y = make_moons(600, noise=noise, random_state=0)
    rest = np.random.default_rng(0).normal(size=(600, 18))
    x = np.hstack([rest[:, :7], x, rest[:, 7:]])
    names = [f"col{i}" for i in range(20)]
    return Splits.from_arrays("two_moons_noise", (x[:400], y[:400]), (x[400:500], y[400:500]),
                              (x[500:], y[500:]), feature_names=names, num_classes=2)
"""


def run(args: list[str], user: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": f"{user}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)


def test_a_selector_and_a_dataset_from_outside_the_package(tmp_path: Path) -> None:
    user = tmp_path / "user"
    (user / "conf" / "model" / "selector").mkdir(parents=True)
    (user / "conf" / "data").mkdir(parents=True)
    (user / "my_selectors.py").write_text(textwrap.dedent(SELECTOR_MODULE))
    (user / "my_datasets.py").write_text(textwrap.dedent(DATASET_MODULE))
    # One YAML each, in the user's own config folder, found through Hydra's search path.
    (user / "conf" / "model" / "selector" / "scored.yaml").write_text(
        "_target_: my_selectors.ScoredTopK\ninit_std: 0.1\n"
    )
    (user / "conf" / "data" / "moons.yaml").write_text(
        "defaults: [_base, _self_]\nname: two_moons_noise\nmodule: my_datasets\noptions:\n  noise: 0.1\n"
    )
    store = tmp_path / "store"
    common = ["logger=none", "trainer.max_epochs=3", f"store_dir={store}", f"hydra.searchpath=[file://{user / 'conf'}]"]
    train = str(ROOT / "src" / "train.py")
    proc = run([train, "model=ipcae", "model/selector=scored", "model.name=scored", "data=digits",
                f"hydra.run.dir={tmp_path / 'a'}", *common], user)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((tmp_path / "a" / "results.json").read_text())
    assert results["model"] == "scored" and results["selector"] == "ScoredTopK"
    assert len(set(results["selected_indices"])) == 10
    # The selector's own diagnostics are logged by the monitor without it knowing the selector.
    proc = run([train, "model=ipcae", "data=moons", f"hydra.run.dir={tmp_path / 'b'}", *common], user)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((tmp_path / "b" / "results.json").read_text())
    assert results["dataset"] == "two_moons_noise" and results["k"] == 2 and results["batch_size"] == 32
    assert all(name.startswith("col") for name in results["selected_features"])

    report = tmp_path / "report.md"
    proc = run(["-m", "ipcae.report", str(store), "--out", str(report), "--csv", str(tmp_path / "runs.csv"),
                "--figures", str(tmp_path / "figures")], user)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = report.read_text().splitlines()
    # Rows are keyed by what changes the result: here the shortened training.
    assert any(x.startswith("| scored [trainer.max_epochs=3] | Digits | ") and "(n=1)" in x for x in lines)
    assert any(x.startswith("| IP-CAE [trainer.max_epochs=3] | two_moons_noise | ") and "(n=1)" in x for x in lines)


def test_selector_diagnostics_reach_the_metrics(tmp_path: Path) -> None:
    user = tmp_path / "user"
    (user / "conf" / "model" / "selector").mkdir(parents=True)
    (user / "my_selectors.py").write_text(textwrap.dedent(SELECTOR_MODULE))
    (user / "conf" / "model" / "selector" / "scored.yaml").write_text("_target_: my_selectors.ScoredTopK\n")
    proc = run([str(ROOT / "src" / "train.py"), "model=ipcae", "model/selector=scored", "model.name=scored",
                "trainer.max_epochs=2", f"hydra.run.dir={tmp_path / 'run'}",
                f"hydra.searchpath=[file://{user / 'conf'}]"], user)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    header = (tmp_path / "run" / "metrics.csv").read_text().splitlines()[0].split(",")
    assert "train/score_spread" in header and "train/unique_pct" in header
    # No temperature: the annealing callback leaves selectors without one alone.
    assert "train/temperature" not in header


def test_a_class_that_is_not_a_selector_is_one_clear_line(tmp_path: Path) -> None:
    proc = run(
        [
            str(ROOT / "src" / "train.py"),
            "model.selector._target_=torch.nn.Identity",
            "trainer.max_epochs=1",
            "logger=none",
            f"hydra.run.dir={tmp_path}",
        ],
        tmp_path,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("error: model.selector._target_='torch.nn.Identity'")
