"""The results schema: which overrides make a run a variant, and what JSON can hold."""

from __future__ import annotations

import json
import math
from pathlib import Path

from ipcae.atomic import write_json_atomic
from ipcae.results import cell_overrides


def test_only_overrides_that_change_the_result_make_a_variant() -> None:
    # Where a run ran, how it was logged, its seed and the names already in its cell do not count.
    plumbing = ["experiment=paper/mnist_classification", "model=ipcae", "seed=3", "threads=1", "launcher=parallel",
                "store_dir=results/paper", "logger=wandb", "trainer=gpu", "trainer.devices=2", "hydra.run.dir=x",
                "~callbacks.progress_bar", "+model/metrics=f1_macro", "retrain=true"]  # fmt: skip
    assert cell_overrides(plumbing) == []
    changes = ["model.selector.noise=per_batch", "trainer.max_epochs=50", "model/decoder=linear", "data.k=20"]
    assert cell_overrides([*plumbing, *changes]) == sorted(changes)


def test_a_named_model_stands_for_its_composition() -> None:
    overrides = ["model=ipcae", "model/selector=mine", "model.name=mine", "model.lr=0.01"]
    assert cell_overrides(overrides) == ["model.lr=0.01"]
    assert cell_overrides(["model=cae", "model/selector=indirect"]) == ["model/selector=indirect"]


def test_non_finite_numbers_are_written_as_null(tmp_path: Path) -> None:
    path = write_json_atomic(tmp_path / "r.json", {"test": {"loss": math.nan, "mse": math.inf, "accuracy": 0.5}})
    assert json.loads(path.read_text()) == {"test": {"loss": None, "mse": None, "accuracy": 0.5}}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]  # no temporary file left behind
