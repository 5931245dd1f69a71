"""The variant search: chosen on validation loss alone, compared with IP-CAE on the same seeds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ipcae.results import cell_overrides
from ipcae.variants import CANDIDATES, SELECTION_SEED, candidate_of, choose, command, main, variant_section
from ipcae.variants import _runs as runs_in


def write_run(root: Path, model: str, overrides: list[str], seed: int, val_loss: float, accuracy: float) -> None:
    folder = root / f"{model}-{'-'.join(overrides) or 'preset'}-{seed}".replace("/", "_")
    folder.mkdir(parents=True)
    result = {
        "model": model, "dataset": "mice_protein", "task": "classification", "seed": seed,
        "overrides": overrides, "val": {"loss": val_loss}, "test": {"accuracy": accuracy},
    }  # fmt: skip
    (folder / "results.json").write_text(json.dumps(result))


def write_candidate(root: Path, name: str, seed: int, val_loss: float, accuracy: float) -> None:
    model, overrides = CANDIDATES[name]
    write_run(root, model, cell_overrides(list(overrides)), seed, val_loss, accuracy)  # as results record them


def test_the_lowest_validation_loss_is_chosen_whatever_the_test_says(tmp_path: Path, capsys) -> None:
    write_run(tmp_path, "ipcae", [], 0, 0.30, 0.90)
    # Lower test accuracy but lower validation loss: chosen. Higher test accuracy: not.
    write_run(tmp_path, "ipcae", ["model.lr=0.003"], 0, 0.20, 0.85)
    write_run(tmp_path, "ipcae", ["model.selector.embedding_dim=64"], 0, 0.25, 0.99)
    write_run(tmp_path, "cae", [], 0, 0.01, 0.99)  # not a candidate
    runs = runs_in([tmp_path])
    assert choose(runs, "mice_protein") == ("lr 0.003", 0.20)
    assert choose(runs, "coil20") is None
    # Two of eight candidates have run: the leader is provisional and nothing runs on more seeds.
    main(["chosen", str(tmp_path), "--datasets", "mice_protein"])
    captured = capsys.readouterr()
    assert captured.out == "" and f"2 of {len(CANDIDATES)} candidates" in captured.err
    for name in CANDIDATES:
        if name not in ("lr 0.003", "P=64"):
            write_candidate(tmp_path, name, 0, 0.40, 0.99)
    main(["chosen", str(tmp_path), "--datasets", "mice_protein"])
    assert capsys.readouterr().out.split() == command("mice_protein", "lr 0.003", [1, 2, 3, 4]).split()
    assert "model.lr=0.003" in command("mice_protein", "lr 0.003", [0]) and "seed=0" in command("coil20", "P=64", [0])
    main(["commands", str(tmp_path), "--datasets", "coil20"])
    assert len(capsys.readouterr().out.splitlines()) == len(CANDIDATES)


def test_section_compares_on_the_seeds_both_have(tmp_path: Path) -> None:
    for seed, (mine, base) in enumerate([(0.95, 0.90), (0.93, 0.92), (0.91, 0.94)]):
        write_run(tmp_path, "ipcae", ["model.lr=0.003"], seed, 0.2 + seed, mine)
        write_run(tmp_path, "ipcae", [], seed, 0.3 + seed, base)
    write_run(tmp_path, "ipcae", [], 3, 0.5, 0.10)  # no variant run on seed 3: left out

    def row_cells() -> tuple[list[str], str]:
        text = "\n".join(variant_section([tmp_path]))
        row = next(line for line in text.splitlines() if line.startswith("| mice_protein"))
        return [c.strip() for c in row.strip("|").split("|")], text

    # One candidate of eight: a provisional leader, not counted in the verdict.
    cells, text = row_cells()
    assert cells[1] == "1" and cells[2] == f"lr 0.003 (provisional: 1 of {len(CANDIDATES)} run)"
    assert cells[8] == "not yet" and "Ahead of IP-CAE on 0 of the 0 datasets" in text
    for name in CANDIDATES:
        if name != "lr 0.003":
            write_candidate(tmp_path, name, 0, 0.90, 0.99)
    cells, text = row_cells()
    assert cells[1] == str(len(CANDIDATES))
    assert cells[2] == "lr 0.003" and cells[3] == "0.2000" and cells[4] == "0.3000"
    assert cells[5].startswith("93.00 ± 2.00 (n=3)") and cells[6].startswith("92.00 ± 2.00 (n=3)")
    # Three of the five seeds: no verdict yet.
    assert cells[7] == "+1.00" and cells[8] == "not yet (3 of 5 seeds)"
    assert "Ahead of IP-CAE on 0 of the 0 datasets" in text
    write_run(tmp_path, "ipcae", ["model.lr=0.003"], 3, 0.5, 0.12)
    write_run(tmp_path, "ipcae", ["model.lr=0.003"], 4, 0.6, 0.90)
    write_run(tmp_path, "ipcae", [], 4, 0.6, 0.88)
    cells, text = row_cells()
    assert cells[5].startswith("76.20 ± ") and cells[6].startswith("74.80 ± ")
    assert cells[7] == "+1.40" and cells[8] == "yes"
    assert "Ahead of IP-CAE on 1 of the 1 datasets" in text
    assert variant_section([tmp_path / "empty"]) == []


@pytest.mark.parametrize("name", list(CANDIDATES))
def test_every_candidate_trains_under_the_paper_protocol(name: str, real_data_dir: Path, tmp_path: Path) -> None:
    """Each candidate's command is a valid run of the paper protocol (one epoch on Mice Protein here)."""
    root = Path(__file__).resolve().parents[1]
    words = command("mice_protein", name, [SELECTION_SEED]).split()
    shortening = ["trainer.max_epochs=1", "retrain=false", "logger=none", "plots=false"]
    done = subprocess.run(
        [sys.executable, str(root / "src" / "train.py"), *words, *shortening, f"hydra.run.dir={tmp_path}"],
        capture_output=True, text=True, timeout=300, env={**os.environ, "IPCAE_DATA_DIR": str(real_data_dir)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads((tmp_path / "results.json").read_text())
    assert result["model"] == CANDIDATES[name][0] and len(result["selected_indices"]) == result["k"] == 10
    # ... and the search recognises the run it made as that candidate's (less this test's shortening).
    result["overrides"] = [o for o in result["overrides"] if o not in shortening]
    (tmp_path / "results.json").write_text(json.dumps(result))
    assert [candidate_of(run) for run in runs_in([tmp_path])] == [name]
