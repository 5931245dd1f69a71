"""The benchmark datasets: split sizes and indices as the reference, preprocessing, names, cache, CLI.

Tests on the real files use ``real_data_dir``; each dataset is parsed once per module run (a
module-wide temporary processed-split cache) and reused from the cache afterwards.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.io
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import instantiate
from sklearn.model_selection import train_test_split
from torch.utils.data import random_split

from ipcae.data import available_datasets, dataset_info, load_splits
from ipcae.data import cache as cache_mod
from ipcae.data import coil20 as coil20_mod
from ipcae.data import mnist as mnist_mod
from ipcae.data.splits import reference_split_80_20
from ipcae.errors import DataError

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
HAR = "har/UCI HAR Dataset"

# name: (train, val, test), features, classes, some feature names (index: name), K, batch size
EXPECTED = {
    "mnist": ((7200, 1800, 1500), 784, 10, {0: "px_0_0", 1: "px_0_1", 28: "px_1_0", 783: "px_27_27"}, 50, 128),
    "fashion_mnist": ((7200, 1800, 1500), 784, 10, {0: "px_0_0", 29: "px_1_1", 783: "px_27_27"}, 50, 128),
    "isolet": ((4990, 1248, 1559), 617, 26, {0: "f0", 616: "f616"}, 50, 128),
    # Column-major images: column 1 is row 1 of column 0, column 32 is row 0 of column 1.
    "coil20": ((864, 288, 288), 1024, 20, {0: "px_0_0", 1: "px_1_0", 32: "px_0_1", 1023: "px_31_31"}, 50, 16),
    "mice_protein": ((648, 216, 216), 77, 8, {0: "DYRK1A_N", 1: "ITSN1_N", 76: "CaNA_N"}, 10, 16),
}
MINMAX = {"isolet", "mice_protein"}
SEED = 42


def fresh_generator() -> torch.Generator:
    return torch.Generator().manual_seed(SEED)


@pytest.fixture(scope="module", autouse=True)
def module_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One processed-split cache for this module, so that each dataset is parsed once."""
    root = tmp_path_factory.mktemp("ipcae-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("IPCAE_CACHE_DIR", str(root))
        mp.delenv("IPCAE_DATA_MIRROR", raising=False)
        mp.delenv(cache_mod.DISABLE_ENV, raising=False)
        yield root


@pytest.fixture(scope="module")
def splits(real_data_dir: Path) -> dict[str, object]:
    """Loaded lazily, once per dataset."""
    loaded: dict[str, object] = {}

    class Lazy(dict):
        def __missing__(self, name: str) -> object:
            loaded[name] = load_splits(name, real_data_dir)
            return loaded[name]

    return Lazy()


# --- a small HAR copy in the original format ------------------------------------------------------


def har_field(value: float) -> str:
    """One value as UCI HAR writes it: 16 characters, 7 decimals, 3-digit exponent."""
    if value == 0:
        mantissa, exponent = 0.0, 0
    else:
        exponent = int(np.floor(np.log10(abs(value))))
        mantissa = value / 10.0**exponent
        if abs(round(mantissa, 7)) >= 10:
            mantissa, exponent = mantissa / 10, exponent + 1
    return f"{mantissa: .7f}e{exponent:+04d}".rjust(16)


def write_har_copy(root: Path, shared: Path, n_train: int = 100, n_test: int = 40, seed: int = 0) -> dict:
    """The UCI HAR layout under ``root/har``: generated matrices, real names, truncated real labels.

    Returns the values as written (parsed back from the text) and the labels.
    """
    rng = np.random.default_rng(seed)
    out = root / HAR
    (out / "train").mkdir(parents=True, exist_ok=True)
    (out / "test").mkdir(parents=True, exist_ok=True)
    for name in ("features.txt", "activity_labels.txt"):
        shutil.copy(shared / HAR / name, out / name)
    result = {}
    for split, n in (("train", n_train), ("test", n_test)):
        labels = (shared / HAR / split / f"y_{split}.txt").read_text().splitlines()[:n]
        (out / split / f"y_{split}.txt").write_text("\n".join(labels) + "\n")
        values = rng.uniform(-1, 1, size=(n, 561)) * rng.choice([1, 1e-3], size=(n, 561))
        lines = ["".join(har_field(v) for v in row) for row in values]
        (out / split / f"X_{split}.txt").write_text("\n".join(lines) + "\n")
        parsed = np.array([[float(line[i : i + 16]) for i in range(0, len(line), 16)] for line in lines])
        result[split] = (parsed, np.array(labels, dtype=np.int64))
    return result


def test_har_field_format() -> None:
    assert har_field(0.28858451) == "  2.8858451e-001"
    assert har_field(-0.020294171) == " -2.0294171e-002"
    assert har_field(-1.0) == " -1.0000000e+000"
    assert len(har_field(9.99999999e-5)) == 16


# --- registry and configs --------------------------------------------------------------------------


@pytest.mark.parametrize("name", [*EXPECTED, "har"])
def test_registered_with_paper_defaults_and_config(name: str, tmp_path: Path) -> None:
    assert name in available_datasets()
    k, batch = (50, 128) if name == "har" else EXPECTED[name][4:]
    info = dataset_info(name)
    assert (info.k, info.batch_size) == (k, batch)
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=[f"data={name}"])
    assert cfg.data.name == name and cfg.data._target_ == "ipcae.data.InMemoryDataModule"
    datamodule = instantiate(cfg.data)  # K and batch size come from the registration, declared once
    assert (datamodule.k, datamodule.batch_size) == (k, batch)


# --- the real datasets -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(EXPECTED))
def test_sizes_shapes_labels_names(name: str, splits: dict) -> None:
    sizes, features, classes, names, _, _ = EXPECTED[name]
    s = splits[name]
    assert s.sizes == sizes
    assert s.num_features == features and s.num_classes == classes
    for x, y in ((s.x_train, s.y_train), (s.x_val, s.y_val), (s.x_test, s.y_test)):
        assert x.dtype == torch.float32 and y.dtype == torch.int64
        assert x.shape[1] == features
        assert int(y.min()) >= 0 and int(y.max()) < classes
        assert torch.isfinite(x).all()
    # Every class occurs in training.
    assert set(s.y_train.tolist()) == set(range(classes))
    assert len(s.feature_names) == features and len(set(s.feature_names)) == features
    for index, feature in names.items():
        assert s.feature_names[index] == feature


@pytest.mark.parametrize("name", list(EXPECTED))
def test_value_ranges(name: str, splits: dict) -> None:
    s = splits[name]
    if name in MINMAX:
        # Fitted on the training rows (ISOLET: on the whole first file, train and validation).
        fitted = torch.cat([s.x_train, s.x_val]) if name == "isolet" else s.x_train
        assert float(fitted.min()) >= -1e-6 and float(fitted.max()) <= 1 + 1e-6
        assert torch.allclose(fitted.min(0).values, torch.zeros(s.num_features), atol=1e-6)
    elif name == "coil20":
        for x in (s.x_train, s.x_val, s.x_test):
            assert float(x.min()) >= 0 and float(x.max()) <= 1
    else:
        mean, std = mnist_mod.MEAN_STD[name]
        assert float(s.x_train.min()) == pytest.approx((0 - mean) / std, abs=1e-5)
        assert float(s.x_train.max()) == pytest.approx((1 - mean) / std, abs=1e-5)


def read_idx_independently(path: Path) -> np.ndarray:
    raw = gzip.decompress(path.read_bytes())
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(dims)


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_mnist_rows_are_the_reference_split(name: str, splits: dict, real_data_dir: Path) -> None:
    s = splits[name]
    kept, rest = random_split(range(60000), [0.15, 0.85], generator=fresh_generator())
    assert (len(kept), len(rest)) == (9000, 51000)
    train, val = random_split(kept, [0.8, 0.2], generator=fresh_generator())
    test, _ = random_split(range(10000), [0.15, 0.85], generator=fresh_generator())
    images = read_idx_independently(real_data_dir / name / "train-images-idx3-ubyte.gz")
    labels = read_idx_independently(real_data_dir / name / "train-labels-idx1-ubyte.gz")
    t_images = read_idx_independently(real_data_dir / name / "t10k-images-idx3-ubyte.gz")
    t_labels = read_idx_independently(real_data_dir / name / "t10k-labels-idx1-ubyte.gz")
    mean, std = mnist_mod.MEAN_STD[name]

    def expected(img: np.ndarray) -> torch.Tensor:
        return (torch.tensor(img, dtype=torch.float32).flatten() / 255 - mean) / std

    for pos in (0, 1, 4321, 7199):
        row = train[pos]  # indexing a Subset of a Subset gives the row of the 60k file
        assert torch.allclose(s.x_train[pos], expected(images[row]), atol=1e-6)
        assert int(s.y_train[pos]) == labels[row]
    assert s.y_train.tolist() == [int(labels[train[i]]) for i in range(len(train))]
    assert s.y_val.tolist() == [int(labels[val[i]]) for i in range(len(val))]
    assert torch.allclose(s.x_val[-1], expected(images[val[len(val) - 1]]), atol=1e-6)
    assert s.y_test.tolist() == [int(t_labels[test[i]]) for i in range(len(test))]
    assert torch.allclose(s.x_test[10], expected(t_images[test[10]]), atol=1e-6)
    # Rows are distinct: no index is used twice.
    assert len({train[i] for i in range(len(train))} | {val[i] for i in range(len(val))}) == 9000


def test_isolet_rows_are_the_reference_split(splits: dict, real_data_dir: Path) -> None:
    s = splits["isolet"]
    first = pd.read_csv(real_data_dir / "isolet" / "isolet1+2+3+4.data.gz", header=None).to_numpy()
    fifth = pd.read_csv(real_data_dir / "isolet" / "isolet5.data.gz", header=None).to_numpy()
    lo, hi = first[:, :-1].min(0), first[:, :-1].max(0)
    # The reference's sizes need integer lengths: fractional [0.8, 0.2] would give 4,991 / 1,247.
    train, val = random_split(range(6238), [4990, 1248], generator=fresh_generator())
    for part, x, y in ((train, s.x_train, s.y_train), (val, s.x_val, s.y_val)):
        rows = list(part.indices)
        assert y.tolist() == (first[rows, -1] - 1).astype(int).tolist()
        for pos in (0, len(rows) // 2, len(rows) - 1):
            expected = (first[rows[pos], :-1] - lo) / (hi - lo)
            assert np.allclose(x[pos].numpy(), expected, atol=1e-6)
    assert s.y_test.tolist() == (fifth[:, -1] - 1).astype(int).tolist()
    assert np.allclose(s.x_test.numpy(), (fifth[:, :-1] - lo) / (hi - lo), atol=1e-6)


def test_coil20_rows_are_the_reference_split(splits: dict, real_data_dir: Path) -> None:
    s = splits["coil20"]
    mat = scipy.io.loadmat(real_data_dir / "coil20" / "COIL20.mat")
    x, y = mat["X"], mat["Y"].ravel().astype(int)
    parts = random_split(range(1440), [0.6, 0.2, 0.2], generator=fresh_generator())
    for part, xs, ys in zip(parts, (s.x_train, s.x_val, s.x_test), (s.y_train, s.y_val, s.y_test), strict=True):
        rows = list(part.indices)
        assert ys.tolist() == (y[rows] - 1).tolist()
        assert np.allclose(xs.numpy(), x[rows], atol=1e-7)


def test_coil20_pixel_names_follow_the_upright_image(splits: dict) -> None:
    image = splits["coil20"].x_train[0].numpy().reshape(32, 32, order="F")  # upright
    names = splits["coil20"].feature_names
    j = 5 * 32 + 7  # column-major position of row 7, column 5
    assert names[j] == "px_7_5"
    assert image[7, 5] == splits["coil20"].x_train[0, j].item()
    assert coil20_mod.pixel_names_column_major(2) == ["px_0_0", "px_1_0", "px_0_1", "px_1_1"]


def test_mice_protein_rows_are_the_reference_split(splits: dict, real_data_dir: Path) -> None:
    s = splits["mice_protein"]
    frame = pd.read_excel(real_data_dir / "mice_protein" / "Data_Cortex_Nuclear.xls", engine="xlrd")
    rows = np.arange(len(frame))
    train, rest = train_test_split(rows, train_size=0.6, shuffle=True, random_state=SEED)
    val, test = train_test_split(rest, train_size=0.5, shuffle=True, random_state=SEED)
    codes = {c: i for i, c in enumerate(sorted(frame["class"].unique()))}
    for idx, ys in ((train, s.y_train), (val, s.y_val), (test, s.y_test)):
        assert ys.tolist() == frame["class"].iloc[idx].map(codes).tolist()
    column = next(c for c in frame.columns[1:78] if not frame[c].isna().any())
    j = list(frame.columns[1:78]).index(column)
    raw = frame[column].to_numpy()
    expected = (raw[val] - raw[train].min()) / (raw[train].max() - raw[train].min())
    assert np.allclose(s.x_val[:, j].numpy(), expected, atol=1e-6)


def test_mice_protein_options_are_cached_separately(real_data_dir: Path, splits: dict) -> None:
    paper = load_splits("mice_protein", real_data_dir, impute="paper")
    default = splits["mice_protein"]
    assert paper.sizes == default.sizes
    assert not torch.equal(paper.x_train, default.x_train)  # the imputation differs
    assert torch.equal(load_splits("mice_protein", real_data_dir, impute="paper").x_train, paper.x_train)


# --- HAR -------------------------------------------------------------------------------------------


def test_har_small_copy_in_the_original_format(tmp_path: Path, real_data_dir: Path) -> None:
    written = write_har_copy(tmp_path, real_data_dir, n_train=100, n_test=40)
    s = load_splits("har", tmp_path)
    assert s.sizes == (80, 20, 40)  # int(0.8 * 100) / rest / all test rows
    assert s.num_features == 561 and s.num_classes == 6
    names = [line.split(maxsplit=1)[1] for line in (real_data_dir / HAR / "features.txt").read_text().splitlines()]
    assert s.feature_names == names and s.feature_names[0] == "tBodyAcc-mean()-X"
    x, y = written["train"]
    x_test, y_test = written["test"]
    lo, hi = x.min(0), x.max(0)
    train, val = random_split(range(100), [80, 20], generator=fresh_generator())
    assert np.allclose(s.x_train.numpy(), (x[train.indices] - lo) / (hi - lo), atol=1e-6)
    assert np.allclose(s.x_val.numpy(), (x[val.indices] - lo) / (hi - lo), atol=1e-6)
    assert np.allclose(s.x_test.numpy(), (x_test - lo) / (hi - lo), atol=1e-6)
    assert s.y_train.tolist() == (y[train.indices] - 1).tolist()
    assert s.y_test.tolist() == (y_test - 1).tolist()
    assert float(torch.cat([s.x_train, s.x_val]).min()) >= 0 and float(torch.cat([s.x_train, s.x_val]).max()) <= 1


def test_har_split_sizes_of_the_full_dataset() -> None:
    train, val = reference_split_80_20(7352)
    assert (len(train), len(val)) == (5881, 1471)
    reference, _ = random_split(range(7352), [5881, 1471], generator=fresh_generator())
    assert train.tolist() == list(reference.indices)


def test_har_gzipped_files_are_read(tmp_path: Path, real_data_dir: Path) -> None:
    write_har_copy(tmp_path, real_data_dir, n_train=30, n_test=10)
    plain = load_splits("har", tmp_path)
    for path in (tmp_path / HAR).rglob("X_*.txt"):
        path.with_name(path.name + ".gz").write_bytes(gzip.compress(path.read_bytes()))
        path.unlink()
    packed = load_splits("har", tmp_path)
    assert torch.equal(plain.x_train, packed.x_train) and torch.equal(plain.x_test, packed.x_test)


def test_har_without_matrices_is_the_missing_files_error(
    real_data_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import socket

    from ipcae.data import download

    with socket.socket() as sock:  # a port that nothing listens on: no network at all
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("IPCAE_DATA_MIRROR", f"http://127.0.0.1:{port}/")
    monkeypatch.setenv("IPCAE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(download, "BACKOFF_S", 0.0)
    with pytest.raises(DataError) as info:
        load_splits("har", real_data_dir)
    message = str(info.value)
    assert "\n" not in message
    assert "missing har/UCI HAR Dataset/train/X_train.txt, har/UCI HAR Dataset/test/X_test.txt" in message
    assert f"http://127.0.0.1:{port}/har/UCI%20HAR%20Dataset/train/X_train.txt" in message
    assert f"put the files under {real_data_dir}" in message


# --- the processed-split cache ---------------------------------------------------------------------


def copy_coil20(real_data_dir: Path, root: Path) -> Path:
    (root / "coil20").mkdir(parents=True)
    return Path(shutil.copy(real_data_dir / "coil20" / "COIL20.mat", root / "coil20" / "COIL20.mat"))


def entries(cache_root: Path, name: str) -> list[Path]:
    return sorted((cache_root / "processed").glob(f"{name}-*.pt"))


@pytest.fixture
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv("IPCAE_CACHE_DIR", str(root))
    return root


def test_cache_is_used_on_the_second_load(
    real_data_dir: Path, tmp_path: Path, own_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy_coil20(real_data_dir, tmp_path / "data")
    first = load_splits("coil20", tmp_path / "data")
    assert len(entries(own_cache, "coil20")) == 1

    def no_parsing(*args: object) -> None:
        raise AssertionError("parsed again instead of using the cache")

    monkeypatch.setattr(coil20_mod, "build", no_parsing)
    second = load_splits("coil20", tmp_path / "data")
    assert torch.equal(first.x_train, second.x_train) and first.feature_names == second.feature_names
    assert (second.name, second.num_classes) == ("coil20", 20)


def test_stale_entry_is_rebuilt_and_removed(real_data_dir: Path, tmp_path: Path, own_cache: Path) -> None:
    mat = copy_coil20(real_data_dir, tmp_path / "data")
    load_splits("coil20", tmp_path / "data")
    (old,) = entries(own_cache, "coil20")
    stat = mat.stat()
    os.utime(mat, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # "the file was replaced"
    load_splits("coil20", tmp_path / "data")
    (new,) = entries(own_cache, "coil20")
    assert new != old and not old.exists()


@pytest.mark.parametrize("damage", ["garbage", "truncated", "wrong_key", "foreign_object", "wrong_shape"])
def test_bad_entry_is_deleted_and_rebuilt(damage: str, real_data_dir: Path, tmp_path: Path, own_cache: Path) -> None:
    copy_coil20(real_data_dir, tmp_path / "data")
    good = load_splits("coil20", tmp_path / "data")
    (entry,) = entries(own_cache, "coil20")
    if damage == "garbage":
        entry.write_bytes(b"not a torch file")
    elif damage == "truncated":
        entry.write_bytes(entry.read_bytes()[: entry.stat().st_size // 2])
    else:
        data = torch.load(entry, weights_only=True)
        if damage == "wrong_key":
            data["key"] = "0" * 16
        elif damage == "wrong_shape":
            data["x_train"] = data["x_train"][:, :10]
        else:
            data["feature_names"] = Path("not/allowed")  # weights_only refuses to unpickle it
        torch.save(data, entry)
    rebuilt = load_splits("coil20", tmp_path / "data")
    assert torch.equal(rebuilt.x_train, good.x_train) and rebuilt.feature_names == good.feature_names
    (again,) = entries(own_cache, "coil20")
    assert torch.equal(torch.load(again, weights_only=True)["x_test"], good.x_test)


def test_unwritable_cache_still_loads(real_data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv("IPCAE_CACHE_DIR", str(blocker))
    copy_coil20(real_data_dir, tmp_path / "data")
    assert load_splits("coil20", tmp_path / "data").sizes == (864, 288, 288)


def test_cache_key_covers_options_and_files(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_text("x")
    base = cache_mod.entry_key("mice_protein", {"impute": "paper"}, [f], 1)
    assert cache_mod.entry_key("mice_protein", {"impute": "paper"}, [f], 1) == base
    assert cache_mod.entry_key("mice_protein", {"impute": "train_mean"}, [f], 1)[0] != base[0]
    assert cache_mod.entry_key("mice_protein", {"impute": "paper"}, [f], 2)[0] != base[0]
    f.write_text("xy")  # another size
    changed = cache_mod.entry_key("mice_protein", {"impute": "paper"}, [f], 1)
    assert changed[0] == base[0] and changed[1] != base[1]


# --- end to end through the training CLI -----------------------------------------------------------


def train_cli(tmp_path: Path, name: str, data_dir: Path, cache: Path, *overrides: str, **env: str) -> dict:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "src" / "train.py"), f"data={name}", "model=ipcae", "trainer.max_epochs=1",
         "logger=none", f"hydra.run.dir={tmp_path / 'run'}", *overrides],
        capture_output=True, text=True, cwd=ROOT, timeout=600,
        env={**os.environ, "IPCAE_DATA_DIR": str(data_dir), "IPCAE_CACHE_DIR": str(cache), "WANDB_MODE": "offline",
             **env},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((tmp_path / "run" / "results.json").read_text())


CLI_CASES = [
    pytest.param("mnist", marks=pytest.mark.slow),
    pytest.param("fashion_mnist", marks=pytest.mark.slow),
    pytest.param("isolet"),
    pytest.param("coil20", marks=pytest.mark.slow),  # batch 16 with 1,024 features: over 20 s
    pytest.param("mice_protein"),
]


@pytest.mark.parametrize("name", CLI_CASES)
def test_train_cli_end_to_end(name: str, tmp_path: Path, real_data_dir: Path, module_cache: Path, splits: dict) -> None:
    splits[name]  # parsed in this process already: the run reads the module's cache
    results = train_cli(tmp_path, name, real_data_dir, module_cache)
    sizes, features, classes, _, k, _ = EXPECTED[name]
    assert (results["n_train"], results["n_val"], results["n_test"]) == sizes
    assert (results["n_features"], results["n_classes"]) == (features, classes)
    assert results["dataset"] == name and results["k"] == k


def test_train_cli_har_small_copy(tmp_path: Path, real_data_dir: Path, module_cache: Path) -> None:
    write_har_copy(tmp_path / "data", real_data_dir, n_train=200, n_test=60)
    results = train_cli(tmp_path, "har", tmp_path / "data", module_cache)
    assert (results["n_train"], results["n_val"], results["n_test"]) == (160, 40, 60)
    assert (results["n_features"], results["n_classes"]) == (561, 6)


def test_isolet_fresh_parse_is_row_major(real_data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The scaler hands back a column-major test matrix; the splits store every tensor row-major."""
    monkeypatch.setenv(cache_mod.DISABLE_ENV, "1")
    s = load_splits("isolet", real_data_dir)
    for name in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        assert getattr(s, name).is_contiguous(), name


def test_reconstruction_cli_on_a_freshly_parsed_dataset(tmp_path: Path, real_data_dir: Path) -> None:
    """A reconstruction run that parses ISOLET itself (no cache) gets through its test step."""
    results = train_cli(
        tmp_path, "isolet", real_data_dir, tmp_path / "cache", "task=reconstruction", IPCAE_NO_CACHE="1"
    )
    assert results["task"] == "reconstruction" and results["test"]["mse"] > 0
