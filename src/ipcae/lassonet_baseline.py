"""LassoNet (Lemhadri et al., 2021) through the maintained ``lassonet`` package: a feature ranking.

LassoNet trains a network along a path of increasing L1 penalties; a feature's importance is the
penalty at which it leaves the model. The K most important features are the selection, evaluated
with the retrained-decoder protocol.
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np
import torch

from ipcae.data import Splits
from ipcae.data.rows import dense_bytes
from ipcae.errors import ConfigError

# The lassonet package takes dense NumPy arrays: sparse or memory-mapped features are densified for
# it up to this size, and refused above it rather than exhaust the machine's memory.
MAX_DENSE_GIB = 4.0


def dense_features(x: Any, split: str) -> np.ndarray:
    """A split's features as the dense array the package needs (see :data:`MAX_DENSE_GIB`)."""
    if isinstance(x, torch.Tensor):
        return x.numpy()
    size = dense_bytes(x.shape)
    if size > MAX_DENSE_GIB * 2**30:
        raise ConfigError(
            f"model=lassonet needs dense arrays (the lassonet package): the {split} split's {x.shape[0]:,} x "
            f"{x.shape[1]:,} features take {size / 2**30:,.1f} GiB densely, over {MAX_DENSE_GIB:g} GiB: use a "
            "selector that reads sparse or memory-mapped data (model=ipcae, cae, stg)"
        )
    return x.columns().numpy()


class _EnoughFeaturesLeft(Exception):
    """Raised from the path callback to end the path once at most K features remain."""


def lassonet_ranking(splits: Splits, task: str, seed: int, stop_at: int | None = None, **options: Any) -> np.ndarray:
    """Feature indices from most to least important, fitted on the training split (validation for the path).

    With ``stop_at=K`` the path ends as soon as at most K features remain. Every later penalty only
    orders those K among themselves, so the first K indices are the same set as with the full
    path, at a fraction of the cost; their order within the K is then not an importance order.
    """
    try:
        from lassonet import LassoNetClassifier, LassoNetRegressor
    except ImportError:
        raise ConfigError("model=lassonet needs the lassonet package: pip install 'ipcae[lassonet]'") from None
    # The package insists on tuples (hidden_dims, n_iters, patience); configs give lists.
    options = {name: tuple(v) if isinstance(v, list) else v for name, v in options.items()}
    estimator = LassoNetClassifier if task == "classification" else LassoNetRegressor
    model = estimator(random_state=seed, torch_seed=seed, verbose=0, **options)
    x_train, x_val = dense_features(splits.x_train, "train"), dense_features(splits.x_val, "validation")
    if task in ("classification", "regression"):
        # Class labels, or the numeric target of a regression (one output).
        y_train, y_val = splits.y_train.numpy(), splits.y_val.numpy()
    else:  # reconstruction: the features predict themselves
        y_train, y_val = x_train, x_val

    history: list[Any] = []

    def keep_history(_: Any, path_so_far: list[Any]) -> None:
        nonlocal history
        history = path_so_far  # the package's own list, which it extends step by step
        if stop_at is not None and int(path_so_far[-1].selected.sum()) <= stop_at:
            raise _EnoughFeaturesLeft

    with contextlib.suppress(_EnoughFeaturesLeft):
        model.path(x_train, y_train, X_val=x_val, y_val=y_val, return_state_dicts=False, callback=keep_history)
    # What `path` computes at its end (the penalty at which each feature leaves; inf: never), here
    # also for a path the callback ended. Stable sort: ties keep feature order, reproducibly.
    importance = np.asarray(model._compute_feature_importances(history))
    return np.argsort(-importance, kind="stable")
