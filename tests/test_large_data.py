"""Large inputs through data=table: sparse matrices kept sparse, memory-mapped .npy read per batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import scipy.sparse
import torch

from ipcae.data import load_splits
from ipcae.data.rows import MappedRows, SparseRows, scale_columns, select_columns
from ipcae.errors import ConfigError, DataError
from ipcae.gumbel import relaxed_select
from ipcae.lassonet_baseline import dense_features

ROOT = Path(__file__).resolve().parents[1]
INFORMATIVE = [5, 17, 123]


@pytest.fixture(autouse=True)
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv("IPCAE_CACHE_DIR", str(root))
    return root


def sparse_problem(n: int = 300, d: int = 400, seed: int = 0) -> tuple[scipy.sparse.csr_matrix, np.ndarray]:
    """1 % non-zero noise columns and three dense informative ones; the class is their sum's sign."""
    rng = np.random.default_rng(seed)
    x = scipy.sparse.random(n, d, density=0.01, format="lil", random_state=seed, dtype=np.float32)
    informative = [j % d for j in INFORMATIVE]
    for j in informative:
        x[:, j] = rng.normal(size=(n, 1)).astype(np.float32)
    x = x.tocsr()
    y = (np.asarray(x[:, informative].sum(axis=1)).ravel() > 0).astype(np.int64)
    return x, y


@pytest.fixture
def sparse_files(tmp_path: Path) -> tuple[Path, Path, scipy.sparse.csr_matrix, np.ndarray]:
    x, y = sparse_problem()
    scipy.sparse.save_npz(tmp_path / "x.npz", x)
    np.save(tmp_path / "y.npy", y)
    return tmp_path / "x.npz", tmp_path / "y.npy", x, y


def dense_of(rows: SparseRows | MappedRows | torch.Tensor) -> torch.Tensor:
    return rows if isinstance(rows, torch.Tensor) else rows.columns()


# --- the row stores --------------------------------------------------------------------------------


def test_sparse_rows_batches_equal_the_dense_rows() -> None:
    x, _ = sparse_problem(n=50, d=30)
    rows, dense = SparseRows.from_scipy(x), torch.from_numpy(x.toarray())
    assert rows.shape == (50, 30) and rows.nnz == x.nnz
    for index in (
        slice(0, 50),
        slice(7, 19),
        slice(10, 10),
        torch.tensor([3, 3, 0, 49, 12]),
        torch.tensor([], dtype=torch.long),
    ):
        batch = rows[index]
        assert batch.layout == torch.sparse_csr
        assert torch.equal(batch.to_dense(), dense[index])


def test_select_columns_is_a_column_gather_with_repeats() -> None:
    x, _ = sparse_problem(n=40, d=30)
    batch, dense = SparseRows.from_scipy(x)[0:40], torch.from_numpy(x.toarray())
    indices = torch.tensor([17, 2, 17, 5, 29])  # a repeat, as CAE's argmax rows can give
    assert torch.equal(select_columns(batch, indices), dense[:, indices])
    assert torch.equal(select_columns(dense, indices), dense[:, indices])


@pytest.mark.parametrize("shape", ["per_feature", "per_example"])
def test_scaled_sparse_rows_have_the_dense_values_and_gradients(shape: str) -> None:
    x, _ = sparse_problem(n=20, d=30)
    batch, dense = SparseRows.from_scipy(x)[0:20], torch.from_numpy(x.toarray())
    weight = torch.randn(30, 4)
    gate = torch.rand(30 if shape == "per_feature" else (20, 30), requires_grad=True)
    sparse_out = scale_columns(batch, gate) @ weight
    (sparse_grad,) = torch.autograd.grad(sparse_out.square().sum(), gate)
    dense_out = (dense * gate) @ weight
    (dense_grad,) = torch.autograd.grad(dense_out.square().sum(), gate)
    torch.testing.assert_close(sparse_out, dense_out)
    torch.testing.assert_close(sparse_grad, dense_grad)


def test_per_batch_selection_of_sparse_rows_is_the_dense_one() -> None:
    """x M^T as a sparse-dense product: the same values and the same gradient for the logits."""
    x, _ = sparse_problem(n=16, d=50)
    batch, dense = SparseRows.from_scipy(x)[0:16], torch.from_numpy(x.toarray())
    logits = torch.randn(4, 50, requires_grad=True)
    outputs, grads = [], []
    for inputs in (batch, dense):
        torch.manual_seed(3)
        out = relaxed_select(inputs, logits, 0.5, "per_batch")
        outputs.append(out)
        grads.append(torch.autograd.grad(out.square().sum(), logits)[0])
    torch.testing.assert_close(outputs[0], outputs[1])
    torch.testing.assert_close(grads[0], grads[1])


# --- loading ---------------------------------------------------------------------------------------


def test_sparse_npz_stays_sparse_with_the_dense_split(sparse_files: tuple) -> None:
    path, labels, x, _y = sparse_files
    np.save(path.with_name("dense.npy"), x.toarray())
    sparse = load_splits("table", path=str(path), labels=str(labels), scaling="none")
    dense = load_splits("table", path=str(path.with_name("dense.npy")), labels=str(labels), scaling="none")
    assert isinstance(sparse.x_train, SparseRows) and not sparse.in_memory
    assert sparse.sizes == dense.sizes == (180, 60, 60) and sparse.num_features == 400
    for split in ("train", "val", "test"):
        assert torch.equal(dense_of(getattr(sparse, f"x_{split}")), getattr(dense, f"x_{split}"))
        assert torch.equal(getattr(sparse, f"y_{split}"), getattr(dense, f"y_{split}"))
    # Stratified on the labels of the file: both classes in every split.
    assert all(len(torch.unique(getattr(sparse, f"y_{s}"))) == 2 for s in ("train", "val", "test"))


@pytest.mark.parametrize("fmt", ["csc", "coo", "bsr", "dia"])
def test_every_save_npz_format_reads_as_the_same_sparse_rows(sparse_files: tuple, fmt: str) -> None:
    """save_npz writes csr, csc, bsr, coo or dia; each holds different arrays and all are the same matrix."""
    path, labels, x, _y = sparse_files
    other = path.with_name(f"x_{fmt}.npz")
    scipy.sparse.save_npz(other, x.asformat(fmt))
    want = load_splits("table", path=str(path), labels=str(labels), scaling="none")
    got = load_splits("table", path=str(other), labels=str(labels), scaling="none")
    assert isinstance(got.x_train, SparseRows)
    for split in ("train", "val", "test"):
        assert torch.equal(dense_of(getattr(got, f"x_{split}")), dense_of(getattr(want, f"x_{split}")))


def test_sparse_scaling_keeps_zeros_and_is_fitted_on_training_rows(sparse_files: tuple) -> None:
    path, labels, _x, _ = sparse_files
    splits = load_splits("table", path=str(path), labels=str(labels))  # scaling=standard
    train = dense_of(splits.x_train).double()
    raw = load_splits("table", path=str(path), labels=str(labels), scaling="none")
    # No centring (zeros stay zeros: the matrix stays sparse); unit variance on the training rows.
    assert torch.equal(train == 0, dense_of(raw.x_train) == 0)
    varied = train.std(0, unbiased=False) > 0
    torch.testing.assert_close(train.std(0, unbiased=False)[varied], torch.ones(int(varied.sum()), dtype=torch.float64))
    minmax = dense_of(load_splits("table", path=str(path), labels=str(labels), scaling="minmax").x_train)
    assert minmax.abs().amax(0).max() == pytest.approx(1.0)


def test_matrix_market_and_sparse_mat_and_h5ad(sparse_files: tuple, tmp_path: Path) -> None:
    path, labels, x, y = sparse_files
    reference = load_splits("table", path=str(path), labels=str(labels), scaling="none")
    scipy.io.mmwrite(tmp_path / "x.mtx", x)
    scipy.io.savemat(tmp_path / "x.mat", {"X": x, "Y": y.reshape(-1, 1)})
    loaded = [
        load_splits("table", path=str(tmp_path / "x.mtx"), labels=str(labels), scaling="none"),
        load_splits("table", path=str(tmp_path / "x.mat"), scaling="none"),
    ]
    anndata = pytest.importorskip("anndata")
    import pandas as pd

    anndata.AnnData(
        X=x, obs=pd.DataFrame({"cell_type": np.array(["a", "b"])[y]}, index=[str(i) for i in range(len(y))])
    ).write_h5ad(tmp_path / "x.h5ad")
    loaded.append(load_splits("table", path=str(tmp_path / "x.h5ad"), target="cell_type", scaling="none"))
    for splits in loaded:
        assert isinstance(splits.x_train, SparseRows)
        assert torch.equal(dense_of(splits.x_test), dense_of(reference.x_test))
        assert torch.equal(splits.y_test, reference.y_test)


def test_labels_from_a_text_file(sparse_files: tuple) -> None:
    path, labels, _, y = sparse_files
    text = labels.with_name("labels.csv")
    text.write_text("diagnosis\n" + "\n".join(np.array(["healthy", "ill"])[y]) + "\n")
    splits = load_splits("table", path=str(path), labels=str(text))
    assert splits.class_names == ["healthy", "ill"]
    reference = load_splits("table", path=str(path), labels=str(labels))
    assert torch.equal(splits.y_train, reference.y_train)


def test_memory_mapped_npy_is_read_per_batch(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, size=(120, 40)).astype(np.float32)
    y = (x[:, 0] > 3).astype(np.int64)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    mapped = load_splits("table", path=str(tmp_path / "x.npy"), labels=str(tmp_path / "y.npy"), mmap=True)
    loaded = load_splits("table", path=str(tmp_path / "x.npy"), labels=str(tmp_path / "y.npy"), mmap=False)
    assert isinstance(mapped.x_train, MappedRows) and isinstance(mapped.x_train.array, np.memmap)
    assert isinstance(loaded.x_train, torch.Tensor)
    # The same rows, standardised with statistics of the training rows alone.
    torch.testing.assert_close(mapped.x_val.columns(), loaded.x_val, atol=1e-5, rtol=1e-5)
    index = torch.tensor([5, 0, 5, 17])
    torch.testing.assert_close(mapped.x_train[index], loaded.x_train[index], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(
        mapped.x_test.columns(torch.tensor([3, 3, 1])), loaded.x_test[:, [3, 3, 1]], atol=1e-5, rtol=1e-5
    )
    # auto maps files above data.mmap_above_gib.
    auto = load_splits("table", path=str(tmp_path / "x.npy"), labels=str(tmp_path / "y.npy"), mmap_above_gib=0)
    assert isinstance(auto.x_train, MappedRows)


def test_lassonet_densifies_only_within_its_bound(sparse_files: tuple, monkeypatch: pytest.MonkeyPatch) -> None:
    path, labels, _x, _ = sparse_files
    splits = load_splits("table", path=str(path), labels=str(labels), scaling="none")
    assert np.array_equal(dense_features(splits.x_train, "train"), dense_of(splits.x_train).numpy())
    monkeypatch.setattr("ipcae.lassonet_baseline.MAX_DENSE_GIB", 1e-4)
    with pytest.raises(ConfigError, match="model=lassonet needs dense arrays"):
        dense_features(splits.x_train, "train")


# --- bad input -------------------------------------------------------------------------------------


def test_bad_large_input_is_one_line_naming_the_fix(sparse_files: tuple, tmp_path: Path) -> None:
    path, labels, x, y = sparse_files
    np.save(tmp_path / "short.npy", y[:-1])
    broken = x.copy()
    broken.data[3] = np.nan
    scipy.sparse.save_npz(tmp_path / "nan.npz", broken)
    dense = x.toarray()
    dense[7, 2] = np.inf
    np.save(tmp_path / "inf.npy", dense)
    cases = [
        (dict(path=str(path)), ConfigError, "pass data.labels="),
        (dict(path=str(path), labels=str(tmp_path / "short.npy")), DataError, "give one label per row"),
        (dict(path=str(tmp_path / "nan.npz"), labels=str(labels)), DataError, "replace them in the file"),
        (dict(path=str(tmp_path / "inf.npy"), labels=str(labels), mmap=True), DataError, "first in row 7"),
        (dict(path=str(path), labels=str(labels), mmap="sometimes"), ConfigError, "data.mmap='sometimes'"),
        (dict(path=str(path), labels=str(tmp_path / "missing.npy")), DataError, "no such file"),
    ]
    for options, error, message in cases:
        with pytest.raises(error) as info:
            load_splits("table", **options)
        assert message in str(info.value) and "\n" not in str(info.value), str(info.value)


# --- the command line ------------------------------------------------------------------------------


def train(tmp_path: Path, name: str, *overrides: str) -> dict:
    run = tmp_path / name
    proc = subprocess.run(
        [sys.executable, str(ROOT / "src" / "train.py"), "data=table", "logger=none", "threads=1",
         "trainer.max_epochs=30", "data.k=3", "data.scaling=none", f"hydra.run.dir={run}", *overrides],
        capture_output=True, text=True, cwd=ROOT, timeout=600,
        env={**os.environ, "WANDB_MODE": "offline"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((run / "results.json").read_text())


@pytest.mark.parametrize("model", ["ipcae", "stg"])
def test_cli_sparse_run_equals_the_dense_run(sparse_files: tuple, tmp_path: Path, model: str) -> None:
    """The same selection and test metrics from the sparse file as from its dense twin, and the
    informative features found (IP-CAE with per-batch noise; STG keeps sparse batches sparse too)."""
    path, labels, x, _ = sparse_files
    np.save(tmp_path / "twin.npy", x.toarray())
    options = [f"model={model}", f"data.labels={labels}"]
    if model == "ipcae":
        options += ["model.selector.noise=per_batch", "model.selector.embedding_dim=32"]
    sparse = train(tmp_path, "sparse", f"data.path={path}", *options)
    dense = train(tmp_path, "dense", f"data.path={tmp_path / 'twin.npy'}", *options)
    assert sparse["selected_indices"] == dense["selected_indices"]
    assert sparse["test"]["accuracy"] == pytest.approx(dense["test"]["accuracy"], abs=1e-6)
    assert sparse["test"]["loss"] == pytest.approx(dense["test"]["loss"], rel=1e-4)
    assert (sparse["dataset"], sparse["n_features"], sparse["n_train"]) == ("x", 400, 180)
    if model == "ipcae":
        # Two of the three informative columns among 400 (chance: about 1 in 10^4), and their signal.
        assert len(set(INFORMATIVE) & set(sparse["selected_indices"])) >= 2
        assert sparse["test"]["accuracy"] >= 0.8


def _saved(tmp_path: Path, x: np.ndarray) -> Path:
    np.save(tmp_path / "x.npy", x)
    return tmp_path / "x.npy"


def _labels(tmp_path: Path, y: np.ndarray) -> Path:
    np.save(tmp_path / "y.npy", y)
    return tmp_path / "y.npy"


@pytest.mark.parametrize("store", ["dense", "sparse", "mapped"])
def test_dropped_last_validation_batch_drops_rows_and_labels_alike(store: str, tmp_path: Path) -> None:
    """The reference's quirk (data.drop_last_val): the same rows of features and labels are left out."""
    from ipcae.data import InMemoryDataModule

    x, y = sparse_problem(n=150, d=40)
    labels = str(_labels(tmp_path, y))
    if store == "sparse":
        scipy.sparse.save_npz(tmp_path / "x.npz", x)
        splits = load_splits("table", path=str(tmp_path / "x.npz"), labels=labels, scaling="none")
    else:
        path = str(_saved(tmp_path, x.toarray()))
        splits = load_splits("table", path=path, labels=labels, scaling="none", mmap=store == "mapped")
    datamodule = InMemoryDataModule.from_splits(splits, batch_size=16, drop_last_val=True)
    (features, targets), *rest = list(datamodule.val_dataloader())
    # 30 validation rows: one full batch of 16 is kept, in one evaluation batch.
    assert not rest and len(targets) == features.shape[0] == 16
    assert torch.equal(dense_of(features.to_dense()), dense_of(splits.x_val)[:16])
    assert torch.equal(targets, splits.y_val[:16])
