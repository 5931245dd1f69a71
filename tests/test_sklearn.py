"""ConcreteSelector: scikit-learn's estimator checks, pipelines, grid search, tasks and attributes."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from ipcae.sklearn import ConcreteSelector

torch.set_num_threads(1)


def fast(**params: object) -> ConcreteSelector:
    """Two epochs on a small decoder: the checks fit dozens of times."""
    return ConcreteSelector(**{"max_epochs": 2, "hidden_sizes": (8,), "batch_size": 16, **params})


@parametrize_with_checks([fast(), fast(method="cae", validation_fraction=0.0), fast(method="gjsd")])
def test_sklearn_estimator_checks(estimator: ConcreteSelector, check: object) -> None:
    check(estimator)


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    x, y = load_digits(return_X_y=True)
    return x[:600], y[:600]


def test_fitted_attributes_and_transform(digits: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = digits
    names = [f"px{i}" for i in range(64)]
    frame = pd.DataFrame(x / 16, columns=names)
    labels = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])[y]
    selector = ConcreteSelector(8, max_epochs=5, random_state=0).fit(frame, labels)
    assert selector.task_ == "classification" and sorted(selector.classes_) == sorted(set(labels))
    assert selector.selected_indices_.shape == (8,) and selector.n_features_to_select_ == 8
    assert selector.probabilities_.shape == (8, 64)
    np.testing.assert_allclose(selector.probabilities_.sum(axis=1), 1.0, rtol=1e-5)
    assert np.allclose(selector.selected_probabilities_, selector.probabilities_.max(axis=1))
    assert list(selector.feature_names_in_) == names and selector.n_features_in_ == 64
    distinct = np.unique(selector.selected_indices_)
    assert selector.unique_percentage_ == 100 * len(distinct) / 8
    # transform: the distinct picks, in X's column order; names follow.
    out = selector.transform(frame)
    assert list(out.columns if hasattr(out, "columns") else selector.get_feature_names_out()) == [
        names[i] for i in distinct
    ]
    np.testing.assert_array_equal(np.asarray(selector.transform(frame)), frame.to_numpy()[:, distinct])
    selector.set_output(transform="pandas")
    assert list(selector.transform(frame).columns) == [names[i] for i in distinct]
    assert 0 <= selector.best_epoch_ < 5 and selector.best_validation_loss_ > 0
    again = pickle.loads(pickle.dumps(selector))
    np.testing.assert_array_equal(again.selected_indices_, selector.selected_indices_)


def test_duplicates_leave_fewer_columns() -> None:
    selector = fast(random_state=0).fit(np.random.default_rng(0).normal(size=(40, 3)), np.arange(40) % 2)
    selector.selected_indices_ = np.array([2, 0, 2])  # two rows on one feature
    assert selector.get_support().tolist() == [True, False, True]
    assert selector.transform(np.arange(6.0).reshape(2, 3)).tolist() == [[0.0, 2.0], [3.0, 5.0]]


def test_task_inference() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 5))
    cases = {
        "reconstruction": None,
        "classification": rng.integers(0, 3, 60),
        "regression": x[:, 0] * 2.5 + 0.1,
    }
    for task, y in cases.items():
        assert fast(random_state=0).fit(x, y).task_ == task
    assert fast(random_state=0).fit(x, rng.integers(0, 2, 60).astype(float)).task_ == "classification"
    assert fast(random_state=0).fit(x, rng.integers(0, 2, 60).astype(bool)).task_ == "classification"
    with pytest.raises(ValueError, match="needs y"):
        fast(task="classification").fit(x)


def test_regression_finds_the_informative_features() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 20))
    y = 300 * x[:, 2] - 200 * x[:, 7] + 250 * x[:, 11] + rng.normal(size=400)  # units far from 1
    # One spare pick: with exactly three, a run can settle on a wrong feature for one row.
    selector = ConcreteSelector(4, max_epochs=100, batch_size=32, random_state=0).fit(x, y)
    assert selector.task_ == "regression"
    assert set(selector.selected_indices_) == {2, 7, 11}
    assert selector.best_validation_loss_ < 0.05  # MSE of the standardised target: R^2 above 0.95


def test_reconstruction_picks_among_duplicated_columns() -> None:
    """Columns 0-3 are independent, the others copies of them: four picks can cover the signal."""
    base = np.random.default_rng(1).normal(size=(300, 4))
    x = np.hstack([base, base[:, [0, 1, 2, 3, 0, 1]]])
    selector = ConcreteSelector(4, max_epochs=60, random_state=0).fit(x)
    assert selector.task_ == "reconstruction"
    assert {i % 4 if i < 4 else [0, 1, 2, 3, 0, 1][i - 4] for i in selector.selected_indices_} == {0, 1, 2, 3}


def test_random_state_and_global_rng() -> None:
    x, y = load_digits(return_X_y=True)
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    a = fast(random_state=3, max_epochs=3).fit(x[:300], y[:300])
    assert torch.equal(torch.random.get_rng_state(), before), "fit changed torch's global random state"
    b = fast(random_state=3, max_epochs=3).fit(x[:300], y[:300])
    np.testing.assert_array_equal(a.probabilities_, b.probabilities_)
    c = fast(random_state=4, max_epochs=3).fit(x[:300], y[:300])
    assert not np.array_equal(a.probabilities_, c.probabilities_)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"n_features_to_select": 65}, "between 1 and the 64 features"),
        ({"n_features_to_select": 0}, "between 1 and"),
        ({"n_features_to_select": 1.5}, "float in"),
        ({"method": "stg"}, "method='stg' is unknown"),
        ({"task": "ranking"}, "task='ranking' is unknown"),
        ({"validation_fraction": 1.0}, r"\[0, 1\)"),
        ({"max_epochs": 0}, "positive integer"),
        ({"device": "tpu"}, "device='tpu' is unknown"),
    ],
)
def test_bad_parameters(params: dict, message: str) -> None:
    x, y = load_digits(return_X_y=True)
    with pytest.raises(ValueError, match=message):
        fast(**params).fit(x[:50], y[:50])


def test_fraction_of_features() -> None:
    x, y = load_digits(return_X_y=True)
    assert fast(n_features_to_select=0.25, random_state=0).fit(x[:100], y[:100]).n_features_to_select_ == 16


def test_pipeline_in_grid_search(digits: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = digits
    pipe = make_pipeline(
        StandardScaler(),
        ConcreteSelector(max_epochs=8, random_state=0),
        LogisticRegression(max_iter=300),
    )
    search = GridSearchCV(pipe, {"concreteselector__n_features_to_select": [2, 12]}, cv=2)
    search.fit(x, y)
    scores = search.cv_results_["mean_test_score"]
    assert search.best_params_ == {"concreteselector__n_features_to_select": 12}
    assert scores[1] > scores[0] + 0.1 and scores[1] > 0.6
    assert search.best_estimator_[1].selected_indices_.shape == (12,)


def test_sparse_input_gives_the_dense_selection() -> None:
    """A scipy.sparse X is trained on as CSR batches: the same selection as its dense twin."""
    import scipy.sparse

    rng = np.random.default_rng(0)
    dense = rng.normal(size=(120, 30)) * (rng.random((120, 30)) < 0.2)
    dense[:, [4, 11]] = rng.normal(size=(120, 2))
    y = (dense[:, 4] + dense[:, 11] > 0).astype(int)
    params = {"n_features_to_select": 2, "max_epochs": 100, "hidden_sizes": (32,), "random_state": 0}
    sparse_fit = fast(**params).fit(scipy.sparse.csr_matrix(dense), y)
    dense_fit = fast(**params).fit(dense, y)
    assert np.array_equal(sparse_fit.selected_indices_, dense_fit.selected_indices_)
    assert set(sparse_fit.selected_indices_) == {4, 11}
    reduced = sparse_fit.transform(scipy.sparse.csr_matrix(dense))
    assert scipy.sparse.issparse(reduced) and np.array_equal(reduced.toarray(), dense[:, sparse_fit.get_support()])
