"""LassoNet (Lemhadri et al., 2021) through the maintained ``lassonet`` package: a feature ranking.

LassoNet trains a network along a path of increasing L1 penalties; a feature's importance is the
penalty at which it leaves the model. The K most important features are the selection, evaluated
with the retrained-decoder protocol.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ipcae.data import Splits
from ipcae.errors import ConfigError


def lassonet_ranking(splits: Splits, task: str, seed: int, **options: Any) -> np.ndarray:
    """Feature indices from most to least important, fitted on the training split (validation for the path)."""
    try:
        from lassonet import LassoNetClassifier, LassoNetRegressor
    except ImportError:
        raise ConfigError("model=lassonet needs the lassonet package: pip install 'ipcae[lassonet]'") from None
    # The package insists on tuples (hidden_dims, n_iters, patience); configs give lists.
    options = {name: tuple(v) if isinstance(v, list) else v for name, v in options.items()}
    estimator = LassoNetClassifier if task == "classification" else LassoNetRegressor
    model = estimator(random_state=seed, torch_seed=seed, verbose=0, **options)
    x_train, x_val = splits.x_train.numpy(), splits.x_val.numpy()
    if task == "classification":
        y_train, y_val = splits.y_train.numpy(), splits.y_val.numpy()
    else:
        y_train, y_val = x_train, x_val
    model.path(x_train, y_train, X_val=x_val, y_val=y_val, return_state_dicts=False)
    importance = model.feature_importances_
    importance = np.asarray(importance.cpu() if hasattr(importance, "cpu") else importance)
    # Stable sort so that ties keep feature order, which makes the ranking reproducible.
    return np.argsort(-importance, kind="stable")
