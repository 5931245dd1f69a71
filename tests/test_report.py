"""The report: aggregation, lambda choice on validation, paper values, failures shown with reasons."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from ipcae.report import build_report, main


def write_run(root: Path, model: str, dataset: str, seed: int, accuracy: float, *, lam: float = 0.0,
              val_loss: float = 1.0, task: str = "classification", mse: float | None = None) -> Path:  # fmt: skip
    run = root / dataset / task / model / f"seed{seed}-{lam}"
    run.mkdir(parents=True)
    test = {"accuracy": accuracy, "loss": 0.5} if task == "classification" else {"mse": mse, "loss": mse}
    results = {
        "model": model, "dataset": dataset, "task": task, "seed": seed, "k": 10,
        "selected_indices": list(range(10)), "unique_pct": 100.0 if model == "ipcae" else 80.0,
        "test": test, "val": {"loss": val_loss}, "best_epoch": 5, "epochs": 10, "train_seconds": 1.0,
        "config": {"model": {"selector": {"diversity_weight": lam, "noise": "per_example"}},
                   "data": {"shuffle": False, "options": {"impute": "paper"}}},
    }  # fmt: skip
    (run / "results.json").write_text(json.dumps(results))
    epochs = pd.DataFrame({"epoch": range(10), "val/unique_pct": [results["unique_pct"]] * 10,
                           "val/accuracy": [accuracy] * 10})  # fmt: skip
    epochs.to_csv(run / "epochs.csv", index=False)
    return run


def test_report_tables(tmp_path: Path) -> None:
    store = tmp_path / "store"
    for seed, acc in enumerate([0.94, 0.96, 0.95]):
        write_run(store, "ipcae", "mice_protein", seed, acc)
    for seed, acc in enumerate([0.60, 0.70]):
        write_run(store, "cae", "mice_protein", seed, acc)
    # GJSD: lambda 1 has the lowest validation loss, so only its runs count.
    for lam, val_loss, acc in [(0.1, 0.9, 0.50), (1.0, 0.3, 0.80), (10.0, 0.6, 0.99)]:
        write_run(store, "gjsd", "mice_protein", 0, acc, lam=lam, val_loss=val_loss)
    write_run(store, "ipcae", "coil20", 0, 0.0, task="reconstruction", mse=2.5e-3)
    failed = store / "har" / "classification" / "ipcae" / "seed0-x"
    failed.mkdir(parents=True)
    (failed / "failed.json").write_text(json.dumps({
        "error": "DataError: har: missing train/X_train.txt", "config": {
            "model": {"name": "ipcae"}, "data": {"name": "har"}, "task": {"name": "classification"}}}))  # fmt: skip

    out = tmp_path / "docs" / "results.md"
    text = build_report([store], out, tmp_path / "docs" / "figures", tmp_path / "docs" / "runs.csv")
    assert out.read_text() == text
    lines = text.splitlines()

    def row(method: str, dataset: str) -> str:
        (line,) = [x for x in lines if x.startswith(f"| {method} | {dataset} |")][:1]
        return line

    assert "95.00 ± 1.00 (n=3) | 94.26 ± 1.48 | +0.74" in row("IP-CAE", "Mice")
    assert "65.00 ± 7.07 (n=2) | 63.10 ± 6.51 | +1.90" in row("CAE", "Mice")
    assert "80.00 ± 0.00 (n=1)" in row("GJSD", "Mice")
    assert "| failed (see below) |" in row("IP-CAE", "HAR")
    failure_lines = [x for x in lines if x.startswith("- HAR ")]
    assert failure_lines == ["- HAR (1 run: IP-CAE classification): `DataError: har: missing train/X_train.txt`"]
    assert "| not run |" in row("IP-CAE", "MNIST")
    assert "2.50e-03" in next(x for x in lines if x.startswith("| IP-CAE | COIL-20 |") and "e-03 ±" in x)
    chosen = [x for x in lines if x.startswith("| GJSD | Mice | classification | 1 |")]
    assert chosen and chosen[0].rstrip().endswith("| yes |")
    runs = pd.read_csv(tmp_path / "docs" / "runs.csv")
    assert len(runs) == 9
    assert (tmp_path / "docs" / "figures" / "mice_protein_classification_curves.png").stat().st_size > 1000


def test_report_without_runs_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match=r"no results\.json"):
        build_report([tmp_path], tmp_path / "r.md", tmp_path / "f", tmp_path / "r.csv")


def test_reconstruction_bounds_script(tmp_path: Path) -> None:
    """The yardsticks are ordered as they must be: more PCA components, lower error; all below the mean."""
    import subprocess
    import sys

    store = tmp_path / "store"
    run = write_run(store, "ipcae", "digits", 0, 0.0, task="reconstruction", mse=0.5)
    results = json.loads((run / "results.json").read_text())
    results["config"]["data"] = {"options": {}}
    (run / "results.json").write_text(json.dumps(results))
    out = tmp_path / "bounds.md"
    script = Path(__file__).parents[1] / "scripts" / "reconstruction_bounds.py"
    subprocess.run([sys.executable, str(script), str(store), "--out", str(out)], check=True)
    values = {
        line.split(" | ")[1]: float(line.split(" | ")[2])
        for line in out.read_text().splitlines()
        if line.startswith("| Digits |")
    }
    mean, pca_k, pca_2k = (
        values["training mean"],
        values["PCA, 10 components (all 64 features in)"],
        values["PCA, 20 components (all 64 features in)"],
    )
    assert pca_2k < pca_k < mean
    assert values["IP-CAE: joint MLP decoder (n=1)"] == 0.5
    assert values["IP-CAE: ridge on its 10 features (n=1)"] < mean


def test_stg_lambda_is_chosen_on_the_retrained_decoder(tmp_path: Path) -> None:
    """The joint STG model sees every gated feature; its lambda is picked on the top-K decoder's loss."""
    store = tmp_path / "store"
    # lambda 0.001: best joint validation loss, worse retrained; lambda 0.01: the other way round.
    for lam, joint_val, retrained_val, retrained_acc in [(0.001, 0.1, 0.5, 0.90), (0.01, 0.4, 0.2, 0.97)]:
        run = write_run(store, "stg", "mice_protein", 0, 0.99, lam=lam, val_loss=joint_val)
        results = json.loads((run / "results.json").read_text())
        results["config"]["model"]["selector"] = {"l0_weight": lam}
        results["retrained"] = {"accuracy": retrained_acc, "loss": 0.3, "val_loss": retrained_val}
        results["reported"] = "retrained"
        (run / "results.json").write_text(json.dumps(results))
    text = build_report([store], tmp_path / "r.md", tmp_path / "f", tmp_path / "r.csv")
    chosen = [x for x in text.splitlines() if x.startswith("| STG | Mice | classification |") and "| yes |" in x]
    assert len(chosen) == 1 and chosen[0].startswith("| STG | Mice | classification | 0.01 | 0.2000 | 97.00 |")
    assert "| STG | Mice | 97.00 ± 0.00 (n=1) |" in text


def test_lambdas_compare_on_the_seeds_they_share(tmp_path: Path) -> None:
    """A lambda run on more seeds is not favoured by luckier extra seeds: the comparison is paired."""
    store = tmp_path / "store"
    write_run(store, "gjsd", "mice_protein", 0, 0.70, lam=0.1, val_loss=0.5)
    # Over all its seeds lambda 1 averages 0.4 < 0.5, but on seed 0 (the one both ran) it is worse.
    for seed, val_loss in enumerate([0.6, 0.3, 0.3]):
        write_run(store, "gjsd", "mice_protein", seed, 0.80, lam=1.0, val_loss=val_loss)
    # No seed in common: each lambda counts all of its own seeds.
    write_run(store, "gjsd", "coil20", 0, 0.90, lam=0.1, val_loss=0.5)
    write_run(store, "gjsd", "coil20", 1, 0.95, lam=1.0, val_loss=0.4)
    text = build_report([store], tmp_path / "r.md", tmp_path / "f", tmp_path / "r.csv")
    chosen = [x for x in text.splitlines() if x.startswith("| GJSD | Mice |") and "| yes |" in x]
    assert chosen == ["| GJSD | Mice | classification | 0.1 | 0.5000 | 70.00 | 1 | yes |"]
    assert "| GJSD | Mice | classification | 1 | 0.6000 | 80.00 | 3 |  |" in text
    assert "| GJSD | COIL-20 | classification | 1 | 0.4000 | 95.00 | 1 | yes |" in text


def test_chosen_prints_the_value_the_page_marks(tmp_path: Path, capsys) -> None:
    """`--chosen MODEL DATASET` (what a two-stage sweep runs next) agrees with the page's choice and writes nothing."""
    store = tmp_path / "store"
    write_run(store, "gjsd", "mice_protein", 0, 0.70, lam=0.1, val_loss=0.5)
    for seed, val_loss in enumerate([0.6, 0.3, 0.3]):
        write_run(store, "gjsd", "mice_protein", seed, 0.80, lam=10.0, val_loss=val_loss)
    main([str(store), "--chosen", "gjsd", "mice_protein", "--out", str(tmp_path / "page.md")])
    assert capsys.readouterr().out == "0.1\n" and not (tmp_path / "page.md").exists()
    main([str(store), "--chosen", "gjsd", "coil20"])  # nothing ran there
    assert capsys.readouterr().out == ""
    # Two variants of the preset and never the preset itself: which one is meant is not guessed.
    for i, variant in enumerate(["model.lr=0.01", "model.lr=0.1"]):
        run = write_run(store, "ipcae_gjsd", "mice_protein", 0, 0.9, lam=1.0 + i)
        results = json.loads((run / "results.json").read_text())
        (run / "results.json").write_text(json.dumps({**results, "overrides": [variant]}))
    with pytest.raises(SystemExit, match="2 variants"):
        main([str(store), "--chosen", "ipcae_gjsd", "mice_protein"])


def test_every_method_dataset_and_variant_that_ran_gets_its_row(tmp_path: Path) -> None:
    """A method unknown to the paper table, a dataset outside the paper and an ablation all appear."""
    store = tmp_path / "store"
    write_run(store, "ipcae", "mice_protein", 0, 0.94)
    variant = write_run(store, "ipcae", "mice_protein", 1, 0.90)
    results = json.loads((variant / "results.json").read_text())
    results["overrides"] = ["model.selector.noise=per_batch"]
    (variant / "results.json").write_text(json.dumps(results))
    write_run(store, "mysel", "mice_protein", 0, 0.81)
    write_run(store, "mysel", "my_table", 0, 0.77)
    text = build_report([store], tmp_path / "r.md", tmp_path / "f", tmp_path / "r.csv")
    lines = text.splitlines()
    assert any(x.startswith("| IP-CAE | Mice | 94.00 ± 0.00 (n=1) |") for x in lines)
    assert any(x.startswith("| IP-CAE [model.selector.noise=per_batch] | Mice | 90.00 ± 0.00 (n=1) |") for x in lines)
    assert any(x.startswith("| mysel | Mice | 81.00 ± 0.00 (n=1) |") for x in lines)
    assert any(x.startswith("| mysel | my_table | 77.00 ± 0.00 (n=1) |") for x in lines)
    # A paper method that did not run still shows its paper value; no paper value is a dash.
    assert any(x.startswith("| STG | MNIST | not run | 92.29 ± 0.30 |") for x in lines)
    assert "| - |" not in text
    assert (tmp_path / "f" / "my_table_classification_curves.png").is_file()


def test_results_written_before_the_reported_field_report_by_the_selectors_rule(tmp_path: Path) -> None:
    """An older results.json without ``reported``: a SAND run (its joint decoder reads all D features)
    stands for the method through its retrained decoder, an IP-CAE run through its joint one."""
    store = tmp_path / "store"
    for model, target, accuracy in (
        ("sand", "ipcae.selectors.SANDSelector", 0.4),
        ("ipcae", "ipcae.selectors.IndirectSelector", 0.9),
    ):
        path = write_run(store, model, "mice_protein", 0, accuracy) / "results.json"
        r = json.loads(path.read_text())
        r.pop("reported", None)
        r.update(n_features=77, k=10, retrained={"accuracy": 0.95, "loss": 0.1, "val_loss": 0.2})
        r["config"]["model"]["selector"] = {"_target_": target}
        path.write_text(json.dumps(r))
    text = build_report([store], tmp_path / "r.md", tmp_path / "f", tmp_path / "r.csv")
    assert "| SAND | Mice | 95.00 ± 0.00 (n=1) |" in text
    assert "| 40.00 ± 0.00 (n=1) | 95.00 ± 0.00 (n=1) |" in text
    assert "| IP-CAE | Mice | 90.00 ± 0.00 (n=1) |" in text


def test_a_results_file_naming_foreign_code_builds_nothing(tmp_path: Path) -> None:
    """The fallback builds only this package's selectors: a _target_ elsewhere is never imported or called."""
    store = tmp_path / "store"
    marker = tmp_path / "ran"
    path = write_run(store, "sand", "mice_protein", 0, 0.4) / "results.json"
    r = json.loads(path.read_text())
    r.update(n_features=77, k=10, retrained={"accuracy": 0.95, "loss": 0.1, "val_loss": 0.2})
    r["config"]["model"]["selector"] = {"_target_": "os.system", "command": f"touch {marker}"}
    path.write_text(json.dumps(r))
    text = build_report([store], tmp_path / "r.md", tmp_path / "f", tmp_path / "r.csv")
    assert "| SAND | Mice | 40.00 ± 0.00 (n=1) |" in text and not marker.exists()
