"""data=table: every file format, header and delimiter detection, labels, splits, scaling, bad input, the CLI."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.io
import torch

from ipcae.data import load_splits
from ipcae.data import table as table_mod
from ipcae.errors import ConfigError, DataError

ROOT = Path(__file__).resolve().parents[1]
CLASSES = ["cat", "dog", "emu"]


@pytest.fixture(autouse=True)
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv("IPCAE_CACHE_DIR", str(root))
    monkeypatch.delenv("IPCAE_NO_CACHE", raising=False)
    return root


def example_frame(n: int = 90, seed: int = 0) -> pd.DataFrame:
    """An ``id`` column (0..n-1), four numeric features and a string label; ``code`` is the label's index."""
    rng = np.random.default_rng(seed)
    labels = np.array(CLASSES)[np.arange(n) % 3]
    frame = pd.DataFrame(
        {
            "id": np.arange(n, dtype=float),
            "code": (np.arange(n) % 3).astype(float),
            "width": rng.normal(5, 2, n).round(4),
            "height": rng.normal(-1, 0.5, n).round(4),
        }
    )
    frame["species"] = labels
    return frame


def load(path: Path, **options: object):
    return load_splits("table", path=str(path), **options)


def rows_by_id(x: torch.Tensor) -> np.ndarray:
    return x[:, 0].numpy().round().astype(int)


# --- formats ---------------------------------------------------------------------------------------


def write(frame: pd.DataFrame, path: Path) -> Path:
    """Write features and labels in the format the suffix names (arrays: X and y)."""
    features = frame.drop(columns="species").to_numpy()
    labels = frame["species"].to_numpy().astype(str)
    suffix = path.name.split(".", 1)[1]
    if suffix == "csv":
        frame.to_csv(path, index=False)
    elif suffix == "csv.gz":
        frame.to_csv(path, index=False, compression="gzip")
    elif suffix == "tsv":
        frame.to_csv(path, sep="\t", index=False)
    elif suffix == "parquet":
        pytest.importorskip("pyarrow")
        frame.to_parquet(path)
    elif suffix == "npz":
        np.savez(path, X=features, y=labels)
    elif suffix == "mat":
        scipy.io.savemat(path, {"X": features, "Y": (frame["code"].to_numpy() + 1).reshape(-1, 1)})
    elif suffix == "v73.mat":
        h5py = pytest.importorskip("h5py")
        with h5py.File(path, "w", userblock_size=512) as f:  # MATLAB's layout: column-major, so stored transposed
            f["X"] = features.T
            f["Y"] = (frame["code"].to_numpy() + 1).reshape(1, -1)
        with open(path, "r+b") as f:  # MATLAB's text header in the user block, as save -v7.3 writes it
            f.write(b"MATLAB 7.3 MAT-file, Platform: GLNXA64".ljust(116) + bytes(8) + b"\x00\x02IM")
    elif suffix == "h5ad":
        anndata = pytest.importorskip("anndata")
        if hasattr(anndata.settings, "allow_write_nullable_strings"):  # pandas 3 strings
            anndata.settings.allow_write_nullable_strings = True
        obs = pd.DataFrame({"species": pd.Categorical(labels)}, index=[f"cell{i}" for i in range(len(frame))])
        var = pd.DataFrame(index=list(frame.columns[:-1]))
        anndata.AnnData(X=features.astype(np.float32), obs=obs, var=var).write_h5ad(path)
    return path


@pytest.mark.parametrize(
    ("name", "options", "names"),
    [
        ("data.csv", {"target": "species"}, "header"),
        ("data.csv.gz", {"target": "species"}, "header"),
        ("data.tsv", {"target": "species"}, "header"),
        ("data.parquet", {"target": "species"}, "header"),
        ("data.h5ad", {"target": "species"}, "header"),
        ("data.npz", {}, "positions"),
        ("data.mat", {}, "positions"),
        ("data.v73.mat", {}, "positions"),
    ],
)
def test_every_format_gives_the_same_splits(tmp_path: Path, name: str, options: dict, names: str) -> None:
    frame = example_frame()
    reference = load(write(frame, tmp_path / "ref.csv"), target="species", scaling="none")
    splits = load(write(frame, tmp_path / name), scaling="none", **options)
    assert splits.sizes == (54, 18, 18)
    assert torch.allclose(splits.x_train, reference.x_train) and torch.allclose(splits.x_test, reference.x_test)
    assert torch.equal(splits.y_train, reference.y_train) and torch.equal(splits.y_val, reference.y_val)
    expected_names = ["id", "code", "width", "height"] if names == "header" else ["f0", "f1", "f2", "f3"]
    assert splits.feature_names == expected_names
    assert splits.num_classes == 3
    # .mat labels are the numbers 1..3, the others the strings.
    assert splits.class_names == (["1", "2", "3"] if name.endswith(".mat") else CLASSES)


def test_npy_is_features_only(tmp_path: Path) -> None:
    frame = example_frame()
    np.save(tmp_path / "x.npy", frame[["id", "width"]].to_numpy())
    splits = load(tmp_path / "x.npy", task="reconstruction", scaling="none")
    assert splits.num_features == 2 and sum(splits.sizes) == 90 and splits.num_classes == 0
    with pytest.raises(ConfigError, match="task=classification needs a target"):
        load(tmp_path / "x.npy")


# --- header, delimiters, labels --------------------------------------------------------------------


@pytest.mark.parametrize("delimiter", [",", "\t", ";", "|", " "])
@pytest.mark.parametrize("header", [True, False])
def test_header_and_delimiter_are_detected(tmp_path: Path, delimiter: str, header: bool) -> None:
    frame = example_frame()
    path = tmp_path / "data.txt"
    frame.to_csv(path, sep=delimiter, index=False, header=header)
    splits = load(path, target="species" if header else -1, scaling="none")
    assert splits.feature_names == (["id", "code", "width", "height"] if header else ["f0", "f1", "f2", "f3"])
    assert sum(splits.sizes) == 90 and splits.class_names == CLASSES
    assert torch.equal(splits.y_train, splits.x_train[:, 1].long())  # label index == the code column


def test_header_detection_ignores_missing_markers_and_index_columns(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    frame = example_frame()
    frame.loc[0, "width"] = np.nan
    frame.to_csv(path, index=False, header=False, na_rep="NA")  # first row has an NA: still data
    assert len(table_mod.read_table(path).features) == 90
    frame.to_csv(path)  # pandas writes the row index as an unnamed first column
    read = table_mod.read_table(path, target="species")
    assert list(read.features.columns) == ["id", "code", "width", "height"]


def test_header_can_be_forced(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    example_frame().to_csv(path, index=False)
    with pytest.raises(DataError, match="non-numeric"):  # the header row read as data
        load(path, header=False, target=-1)


def test_integer_and_boolean_labels(tmp_path: Path) -> None:
    frame = example_frame()
    frame["species"] = frame["code"].astype(int) * 10 + 5  # 5, 15, 25
    frame.to_csv(tmp_path / "a.csv", index=False)
    assert load(tmp_path / "a.csv", target="species").class_names == ["5", "15", "25"]
    frame["species"] = frame["code"] > 0
    frame.to_csv(tmp_path / "b.csv", index=False)
    assert load(tmp_path / "b.csv", target="species").class_names == ["False", "True"]


# --- splits and preprocessing ----------------------------------------------------------------------


def test_split_is_stratified_and_seeded_independently(tmp_path: Path) -> None:
    frame = pd.DataFrame({"id": np.arange(200.0), "v": np.random.default_rng(0).normal(size=200)})
    frame["label"] = np.repeat(["a", "b", "c"], [120, 60, 20])
    frame.to_csv(tmp_path / "d.csv", index=False)
    splits = load(tmp_path / "d.csv", target="label", scaling="none")
    assert splits.sizes == (120, 40, 40)
    for y, size in ((splits.y_train, 120), (splits.y_val, 40), (splits.y_test, 40)):
        counts = torch.bincount(y, minlength=3).numpy()
        assert np.abs(counts - size * np.array([0.6, 0.3, 0.1])).max() <= 1, counts
    ids = [set(rows_by_id(x)) for x in (splits.x_train, splits.x_val, splits.x_test)]
    assert set.union(*ids) == set(range(200)) and sum(map(len, ids)) == 200
    other = load(tmp_path / "d.csv", target="label", scaling="none", split_seed=7)
    assert set(rows_by_id(other.x_train)) != ids[0]
    shares = load(tmp_path / "d.csv", target="label", scaling="none", fractions=[0.8, 0.1, 0.1])
    assert shares.sizes == (160, 20, 20)


def test_split_column(tmp_path: Path) -> None:
    frame = example_frame()
    frame["part"] = np.where(frame["id"] < 50, "train", np.where(frame["id"] < 70, " Validation", "TEST"))
    frame.to_csv(tmp_path / "d.csv", index=False)
    splits = load(tmp_path / "d.csv", target="species", split_column="part", scaling="none")
    assert splits.sizes == (50, 20, 20) and splits.num_features == 4
    assert list(rows_by_id(splits.x_train)) == list(range(50))
    assert list(rows_by_id(splits.x_test)) == list(range(70, 90))


@pytest.mark.parametrize("scaling", ["standard", "minmax"])
def test_scaling_is_fitted_on_the_training_rows(tmp_path: Path, scaling: str) -> None:
    example_frame().to_csv(tmp_path / "d.csv", index=False)
    raw = load(tmp_path / "d.csv", target="species", scaling="none")
    scaled = load(tmp_path / "d.csv", target="species", scaling=scaling)
    train = raw.x_train.double()
    if scaling == "standard":
        shift, scale = train.mean(0), train.std(0, unbiased=False)
    else:
        shift, scale = train.amin(0), train.amax(0) - train.amin(0)
    for part in ("x_train", "x_val", "x_test"):
        expected = (getattr(raw, part).double() - shift) / scale
        assert torch.allclose(getattr(scaled, part).double(), expected, atol=1e-5), part
    # The test rows are not used: their statistics differ from the training rows'.
    assert not torch.allclose(scaled.x_test.double().mean(0), torch.zeros(4, dtype=torch.float64), atol=1e-3)


def test_impute_train_mean(tmp_path: Path) -> None:
    frame = example_frame()
    frame.loc[frame["id"].isin([3, 40, 77]), "width"] = np.nan
    frame.to_csv(tmp_path / "d.csv", index=False)
    with pytest.raises(DataError, match=r"3 missing value\(s\) in 1 feature column\(s\) \(first: width\)"):
        load(tmp_path / "d.csv", target="species")
    splits = load(tmp_path / "d.csv", target="species", scaling="none", impute="train_mean")
    train_ids = rows_by_id(splits.x_train)
    observed = frame.set_index("id").loc[train_ids, "width"]
    mean = observed.mean()  # pandas skips the missing ones
    for x in (splits.x_train, splits.x_val, splits.x_test):
        filled = np.isin(rows_by_id(x), [3, 40, 77])
        assert np.allclose(x[filled, 2].numpy(), mean, atol=1e-4)


def test_drop_non_numeric_and_constant_columns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    frame = example_frame()
    frame["city"] = "Oslo"
    frame["flat"] = 1.0
    frame.to_csv(tmp_path / "d.csv", index=False)
    with caplog.at_level(logging.WARNING, logger="ipcae"):
        splits = load(tmp_path / "d.csv", target="species", drop_non_numeric=True)
    assert splits.feature_names == ["id", "code", "width", "height", "flat"]
    assert "left out 1 non-numeric column(s): city" in caplog.text
    assert "1 constant feature column(s) kept (first: flat)" in caplog.text


def test_regression_target(tmp_path: Path) -> None:
    frame = example_frame().drop(columns="species")
    frame["price"] = 1000 + 300 * frame["width"]
    frame.to_csv(tmp_path / "d.csv", index=False)
    splits = load(tmp_path / "d.csv", target="price", task="regression")
    assert splits.y_train.dtype == torch.float32 and splits.num_classes == 0 and splits.class_names is None
    assert abs(float(splits.y_train.mean())) < 1e-5 and abs(float(splits.y_train.std(unbiased=False)) - 1) < 1e-4
    raw = load(tmp_path / "d.csv", target="price", task="regression", scale_target=False)
    assert float(raw.y_train.mean()) > 500


def test_cache_is_used_and_follows_the_file(tmp_path: Path, own_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "d.csv"
    example_frame().to_csv(path, index=False)
    first = load(path, target="species")
    assert len(list((own_cache / "processed").glob("table-*.pt"))) == 1

    def no_parsing(*args: object, **kwargs: object) -> None:
        raise AssertionError("parsed again instead of using the cache")

    monkeypatch.setattr(table_mod, "build", no_parsing)
    cached = load(path, target="species")
    assert torch.equal(cached.x_train, first.x_train) and cached.class_names == CLASSES
    monkeypatch.undo()
    monkeypatch.setenv("IPCAE_CACHE_DIR", str(own_cache))
    example_frame(seed=1).to_csv(path, index=False)  # another file: another entry, the old one goes
    changed = load(path, target="species")
    assert not torch.equal(changed.x_train, first.x_train)
    assert len(list((own_cache / "processed").glob("table-*.pt"))) == 1


# --- bad input -------------------------------------------------------------------------------------


def bad_files(tmp_path: Path) -> dict[str, tuple[Path, dict, type, str]]:
    """name: (file, options, error type, what the one-line message says)."""
    frame = example_frame()
    good = tmp_path / "good.csv"
    frame.to_csv(good, index=False)
    missing = frame.copy()
    missing.loc[[1, 2], "height"] = np.nan
    missing.to_csv(tmp_path / "missing.csv", index=False)
    text = frame.assign(city="Oslo")
    text.to_csv(tmp_path / "text.csv", index=False)
    rare = pd.concat([frame, frame.iloc[:2].assign(species="yak")])
    rare.to_csv(tmp_path / "rare.csv", index=False)
    parts = frame.assign(part=np.where(frame["id"] < 60, "train", "holdout"))
    parts.to_csv(tmp_path / "parts.csv", index=False)
    (tmp_path / "data.xlsx").write_bytes(b"not supported")
    frame.drop(columns="species").to_csv(tmp_path / "numeric.csv", index=False)
    no_target = frame.copy()
    no_target.loc[5, "species"] = np.nan
    no_target.to_csv(tmp_path / "no_target.csv", index=False)
    return {
        "missing values": (tmp_path / "missing.csv", {"target": "species"}, DataError, "2 missing value(s)"),
        "non-numeric": (tmp_path / "text.csv", {"target": "species"}, DataError, "drop_non_numeric=true"),
        "rare class": (tmp_path / "rare.csv", {"target": "species"}, DataError, "class 'yak' of rare.csv has 2 row"),
        "unknown target": (good, {"target": "specis"}, ConfigError, "did you mean 'species'"),
        "no target": (good, {}, ConfigError, "task=classification needs a target"),
        "bad split values": (tmp_path / "parts.csv", {"target": "species", "split_column": "part"}, DataError,
                             "'holdout'"),
        "unknown format": (tmp_path / "data.xlsx", {}, ConfigError, "unknown format '.xlsx'"),
        "no such file": (tmp_path / "nothing.csv", {}, DataError, "no such file"),
        "regression on labels": (good, {"target": "species", "task": "regression"}, ConfigError, "is not numeric"),
        "classification on floats": (tmp_path / "numeric.csv", {"target": "width"}, ConfigError, "task=regression"),
        "missing target": (tmp_path / "no_target.csv", {"target": "species"}, DataError, "no value in the target"),
        "bad fractions": (good, {"target": "species", "fractions": [0.5, 0.5]}, ConfigError, "sum to 1"),
        "bad scaling": (good, {"target": "species", "scaling": "robust"}, ConfigError, "data.scaling='robust'"),
    }  # fmt: skip


BAD = [
    "missing values", "non-numeric", "rare class", "unknown target", "no target", "bad split values",
    "unknown format", "no such file", "regression on labels", "classification on floats", "missing target",
    "bad fractions", "bad scaling",
]  # fmt: skip


@pytest.mark.parametrize("case", BAD)
def test_bad_input_is_one_line_naming_the_fix(tmp_path: Path, case: str) -> None:
    path, options, error, message = bad_files(tmp_path)[case]
    with pytest.raises(error) as info:
        load(path, **options)
    assert message in str(info.value) and "\n" not in str(info.value)


# --- the command line ------------------------------------------------------------------------------


def train(tmp_path: Path, *overrides: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "src" / "train.py"), "data=table", "logger=none", "trainer.max_epochs=3",
         "threads=1", f"hydra.run.dir={tmp_path / 'run'}", *overrides],
        capture_output=True, text=True, cwd=ROOT, timeout=600,
        env={**os.environ, "WANDB_MODE": "offline", **env},
    )  # fmt: skip


def results(tmp_path: Path, proc: subprocess.CompletedProcess) -> dict:
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((tmp_path / "run" / "results.json").read_text())


# Every bad input is checked above through the loader; these go through the command line (seconds each).
@pytest.mark.parametrize("case", ["missing values", "no target", "no path"])
def test_cli_bad_input_exits_2_and_writes_nothing(tmp_path: Path, case: str) -> None:
    if case == "no path":
        overrides: list[str] = []
        message = "data.path must be set"
    else:
        path, options, _, message = bad_files(tmp_path)[case]
        overrides = [f"data.path={path}", *(f"data.{k}={v}" for k, v in options.items())]
    proc = train(tmp_path, *overrides)
    assert proc.returncode == 2, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    run = tmp_path / "run"
    assert not (run / "results.json").exists() and not (run / "selected_features.csv").exists()
    assert not (run / "checkpoints").exists()


def test_cli_csv_with_header_and_string_labels(tmp_path: Path) -> None:
    path = tmp_path / "flowers.csv"
    example_frame().to_csv(path, index=False)
    out = results(tmp_path, train(tmp_path, f"data.path={path}", "data.target=species"))
    # The file names the dataset in results; K = min(50, D).
    assert (out["dataset"], out["task"], out["k"]) == ("flowers", "classification", 4)
    assert out["class_names"] == CLASSES and out["n_classes"] == 3
    assert (out["n_train"], out["n_val"], out["n_test"], out["n_features"]) == (54, 18, 18, 4)
    names = ["id", "code", "width", "height"]
    assert out["selected_features"] == [names[i] for i in out["selected_indices"]]
    assert 0 <= out["test"]["accuracy"] <= 1
    selection = pd.read_csv(tmp_path / "run" / "selected_features.csv")
    assert list(selection.columns) == ["row", "index", "name", "probability"]
    assert selection["index"].tolist() == out["selected_indices"]
    assert selection["name"].tolist() == out["selected_features"]
    assert selection["probability"].between(0, 1).all()
    # data.k is honoured, and model.k follows it.
    again = results(tmp_path, train(tmp_path, f"data.path={path}", "data.target=species", "data.k=2"))
    assert again["k"] == 2 and again["config"]["model"]["k"] == 2


def test_cli_regression_and_reconstruction(tmp_path: Path) -> None:
    frame = example_frame().drop(columns="species")
    frame["price"] = 1000 + 300 * frame["width"] - 50 * frame["height"]
    path = tmp_path / "prices.tsv"
    frame.to_csv(path, sep="\t", index=False)
    out = results(tmp_path, train(tmp_path, f"data.path={path}", "data.target=price", "task=regression"))
    assert out["task"] == "regression" and set(out["test"]) == {"mse", "loss"}
    assert out["n_classes"] is None and out["class_names"] is None and out["n_features"] == 4
    out = results(tmp_path, train(tmp_path, f"data.path={path}", "task=reconstruction"))
    assert out["task"] == "reconstruction" and out["n_features"] == 5 and out["test"]["mse"] > 0


def test_cli_regression_on_class_labels_is_an_error(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "src" / "train.py"), "task=regression", "logger=none",
         f"hydra.run.dir={tmp_path / 'run'}"],
        capture_output=True, text=True, cwd=ROOT, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 2 and "error: task=regression needs a numeric target" in proc.stderr
    assert not (tmp_path / "run" / "results.json").exists()


def test_cli_allaml_mat(tmp_path: Path, real_data_dir: Path) -> None:
    """7,129 genes of 72 patients (scikit-feature's ALLAML.mat): 50 distinct genes and a test accuracy."""
    path = real_data_dir / "highdim" / "ALLAML.mat"
    out = results(
        tmp_path,
        train(
            tmp_path, f"data.path={path}", "trainer.max_epochs=20", "model.selector.embedding_dim=128",
            IPCAE_CACHE_DIR=str(tmp_path / "cache"),
        ),
    )  # fmt: skip
    assert (out["n_features"], out["n_classes"], out["class_names"]) == (7129, 2, ["1", "2"])
    assert (out["n_train"], out["n_val"], out["n_test"]) == (43, 14, 15)
    assert out["k"] == 50 and len(set(out["selected_indices"])) == 50
    assert out["test"]["accuracy"] >= 0.6
