"""scikit-learn interface: :class:`ConcreteSelector`, IP-CAE / CAE / GJSD as a feature selector.

>>> from ipcae.sklearn import ConcreteSelector
>>> from sklearn.pipeline import make_pipeline
>>> from sklearn.preprocessing import StandardScaler
>>> from sklearn.linear_model import LogisticRegression
>>> pipe = make_pipeline(StandardScaler(), ConcreteSelector(n_features_to_select=10), LogisticRegression())

It trains what ``python src/train.py`` trains (the same selector, MLP decoder,
:class:`~ipcae.module.FeatureSelectionModule` and temperature annealing) with a quiet Lightning
Trainer: no logger, no progress bar, no files.
"""

from __future__ import annotations

import logging
import math
import numbers
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator
from sklearn.feature_selection import SelectorMixin
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import check_is_fitted, validate_data

METHODS = ("ipcae", "cae", "gjsd")
TASKS = ("auto", "classification", "regression", "reconstruction")
DEVICES = {"auto": "auto", "cpu": "cpu", "gpu": "gpu", "cuda": "gpu", "mps": "mps"}


@contextmanager
def _quiet() -> Iterator[None]:
    """Lightning's start-up lines and advice (workers, logging interval) are noise inside an estimator."""
    from lightning.fabric.utilities.warnings import PossibleUserWarning

    loggers = [logging.getLogger(name) for name in ("lightning.pytorch", "lightning.fabric")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=PossibleUserWarning)
            warnings.filterwarnings("ignore", module=r"lightning(\.|$)")
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _keep_best_callback() -> Any:
    """A callback holding the weights of the epoch with the lowest validation loss, in memory (no checkpoint files)."""
    import lightning as L

    class KeepBest(L.Callback):
        def __init__(self) -> None:
            self.loss, self.epoch, self.state = math.inf, -1, None

        def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
            loss = trainer.callback_metrics.get("val/loss")
            if loss is not None and float(loss) < self.loss:
                self.loss, self.epoch = float(loss), trainer.current_epoch
                self.state = {k: v.detach().clone() for k, v in pl_module.state_dict().items()}

    return KeepBest()


class ConcreteSelector(SelectorMixin, BaseEstimator):
    """Select ``n_features_to_select`` features with a concrete selector trained jointly with a decoder.

    Parameters
    ----------
    n_features_to_select : int, float or None, default=None
        K. An int is a number of features, a float in (0, 1] a fraction of them; None means
        ``min(10, n_features)``.
    method : {"ipcae", "cae", "gjsd"}, default="ipcae"
        IP-CAE (indirectly parameterised logits), CAE (free logits), or CAE with the GJSD
        diversity reward weighted by ``diversity_weight``.
    task : {"auto", "classification", "regression", "reconstruction"}, default="auto"
        What the decoder learns from the K features. ``auto``: no ``y`` means reconstruction (of
        all features of X); integer, boolean or string labels, and floats that are all whole
        numbers, classification; other floats regression (the target is standardised internally).
    max_epochs, batch_size, learning_rate : training length, mini-batch size, Adam's step size.
    temperature_start, temperature_end : float
        The Gumbel-softmax temperature, annealed exponentially once per epoch.
    validation_fraction : float, default=0.2
        Rows held out (stratified by class when possible) to keep the epoch with the lowest
        validation loss, as the command line does; 0 trains on all rows and keeps the last epoch.
    embedding_dim : int or None, default=None
        IP-CAE's embedding size P (None: the number of features; the shared map then has D^2
        weights, so choose e.g. 64-512 for thousands of features).
    diversity_weight : float, default=1.0
        The GJSD weight lambda (``method="gjsd"`` only).
    hidden_sizes : tuple of int, default=(200,)
        Hidden layers of the MLP decoder (``()``: a linear decoder).
    device : str, default="auto"
        Lightning accelerator: "auto" (a GPU when there is one), "cpu", "gpu"/"cuda", "mps".
    random_state : int, RandomState or None
        Seeds initialisation, Gumbel noise, batch order and the validation split. Torch's global
        random state is restored after fitting.

    Attributes
    ----------
    selected_indices_ : ndarray of shape (K,)
        The feature each selector row picked, in row order; two rows can pick the same feature.
    probabilities_ : ndarray of shape (K, n_features_in_)
        Each row's selection probabilities (softmax of its logits).
    selected_probabilities_ : ndarray of shape (K,)
        The probability of each row's pick.
    unique_percentage_ : float
        Distinct features among the K picks, in percent.
    n_features_to_select_ : int
        K as resolved from ``n_features_to_select``.
    classes_ : ndarray
        The class labels (classification only).
    task_ : str
        The task trained.
    best_epoch_, best_validation_loss_ : the kept epoch and its validation loss (None without validation).
    n_features_in_, feature_names_in_ : as in scikit-learn.

    Notes
    -----
    ``transform`` keeps the distinct selected features in the column order of X (scikit-learn's
    support mask is a set): when rows picked the same feature it returns fewer than K columns, and
    ``unique_percentage_`` says so. For the K picks in row order, with repeats, index with
    ``X[:, selected_indices_]``. X is used as given: scale it first (e.g. ``StandardScaler``).
    """

    def __init__(
        self,
        n_features_to_select: int | float | None = None,
        *,
        method: str = "ipcae",
        task: str = "auto",
        max_epochs: int = 100,
        batch_size: int = 64,
        learning_rate: float = 1e-3,
        temperature_start: float = 10.0,
        temperature_end: float = 0.01,
        validation_fraction: float = 0.2,
        embedding_dim: int | None = None,
        diversity_weight: float = 1.0,
        hidden_sizes: Sequence[int] = (200,),
        device: str = "auto",
        random_state: int | np.random.RandomState | None = None,
    ) -> None:
        self.n_features_to_select = n_features_to_select
        self.method = method
        self.task = task
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.temperature_start = temperature_start
        self.temperature_end = temperature_end
        self.validation_fraction = validation_fraction
        self.embedding_dim = embedding_dim
        self.diversity_weight = diversity_weight
        self.hidden_sizes = hidden_sizes
        self.device = device
        self.random_state = random_state

    # --- parameters ----------------------------------------------------------------------------

    def _check_params(self, n_features: int) -> int:
        """Validate the parameters (at fit, as scikit-learn asks) and return K."""
        if self.method not in METHODS:
            raise ValueError(f"method={self.method!r} is unknown: use one of {', '.join(METHODS)}")
        if self.task not in TASKS:
            raise ValueError(f"task={self.task!r} is unknown: use one of {', '.join(TASKS)}")
        if str(self.device).split(":")[0].lower() not in DEVICES:
            raise ValueError(f"device={self.device!r} is unknown: use one of {', '.join(DEVICES)}")
        for name in ("max_epochs", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name}={value!r} must be a positive integer")
        if not (isinstance(self.validation_fraction, numbers.Real) and 0 <= self.validation_fraction < 1):
            raise ValueError(f"validation_fraction={self.validation_fraction!r} must be in [0, 1)")
        if not (isinstance(self.learning_rate, numbers.Real) and self.learning_rate > 0):
            raise ValueError(f"learning_rate={self.learning_rate!r} must be positive")
        k = self.n_features_to_select
        if k is None:
            return min(10, n_features)
        if isinstance(k, numbers.Integral) and not isinstance(k, bool):
            if 1 <= k <= n_features:
                return int(k)
            raise ValueError(f"n_features_to_select={k} must be between 1 and the {n_features} features of X")
        if isinstance(k, numbers.Real) and 0 < k <= 1:
            return max(1, round(k * n_features))
        raise ValueError(f"n_features_to_select={k!r} must be an int in [1, n_features], a float in (0, 1] or None")

    def _resolve_task(self, y: np.ndarray | None) -> str:
        if self.task != "auto":
            if self.task != "reconstruction" and y is None:
                raise ValueError(f"task={self.task!r} needs y; without y use task='reconstruction'")
            return self.task
        if y is None:
            return "reconstruction"
        kind = type_of_target(y, input_name="y", raise_unknown=True)
        if kind in ("binary", "multiclass"):
            return "classification"
        if kind == "continuous":
            return "regression"
        raise ValueError(f"y is {kind}: ConcreteSelector takes one column of class labels or numbers")

    # --- fitting -------------------------------------------------------------------------------

    def fit(self, X: ArrayLike, y: ArrayLike | None = None) -> ConcreteSelector:
        """Train the selector (and its decoder) on X, with y as labels or target if given."""
        if y is None:
            X = validate_data(self, X, accept_sparse="csr", dtype=[np.float64, np.float32], ensure_min_samples=2)
        else:
            X, y = validate_data(self, X, y, accept_sparse="csr", dtype=[np.float64, np.float32], ensure_min_samples=2)
        k = self._check_params(X.shape[1])
        task = self._resolve_task(y)
        rng = check_random_state(self.random_state)
        seed = int(rng.randint(np.iinfo(np.int32).max))

        num_classes = 0
        if task == "classification":
            self.classes_, target = np.unique(y, return_inverse=True)
            num_classes = len(self.classes_)
            if num_classes < 2:
                raise ValueError(f"y has 1 class ({self.classes_[0]!r}): classification needs at least 2")
        elif task == "regression":
            target = np.asarray(y, dtype=np.float64)
            # A standardised target keeps the MSE (and so the learning rate) independent of its units.
            target = (target - target.mean()) / (target.std() or 1.0)
        else:
            target = np.zeros(X.shape[0], dtype=np.int64)

        train, val = self._split(X.shape[0], target if task == "classification" else None, seed)
        model, best = self._train(X, target, train, val, task, num_classes, k, seed)

        import torch

        with torch.no_grad():
            selector = model.selector
            self.selected_indices_ = selector.selected_indices().numpy().astype(np.int64)
            self.probabilities_ = selector.probabilities().double().numpy()
            self.selected_probabilities_ = selector.selected_probabilities().double().numpy()
        self.unique_percentage_ = 100.0 * len(np.unique(self.selected_indices_)) / k
        self.n_features_to_select_ = k
        self.task_ = task
        self.best_epoch_ = best.epoch if best.state is not None else self.max_epochs - 1
        self.best_validation_loss_ = best.loss if best.state is not None else None
        return self

    def _split(self, n: int, labels: np.ndarray | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
        rows = np.arange(n)
        if not self.validation_fraction:
            return rows, rows[:0]
        n_val = max(1, math.ceil(self.validation_fraction * n))
        if n - n_val < 1:
            raise ValueError(f"validation_fraction={self.validation_fraction} leaves no training rows of {n}")
        try:
            train, val = train_test_split(rows, test_size=n_val, random_state=seed, stratify=labels)
        except ValueError:  # classes too small to stratify: a plain random split
            train, val = train_test_split(rows, test_size=n_val, random_state=seed)
        return np.sort(train), np.sort(val)

    def _train(
        self,
        X: np.ndarray,
        target: np.ndarray,
        train: np.ndarray,
        val: np.ndarray,
        task: str,
        num_classes: int,
        k: int,
        seed: int,
    ) -> tuple[Any, Any]:
        import lightning as L
        import torch

        from ipcae.callbacks import TemperatureAnnealing
        from ipcae.data.datamodule import InMemoryDataModule
        from ipcae.data.splits import Splits
        from ipcae.module import FeatureSelectionModule

        y_dtype = torch.float32 if task == "regression" else torch.int64
        names = [f"x{i}" for i in range(X.shape[1])]
        if hasattr(X, "tocsr"):
            # Sparse input stays sparse (CSR batches; see ipcae.data.rows).
            from ipcae.data.rows import SparseRows

            y_all = torch.as_tensor(target, dtype=y_dtype)
            parts = [SparseRows.from_scipy(X[rows]) for rows in (train, val, train[:0])]
            splits = Splits("arrays", parts[0], y_all[train], parts[1], y_all[val], parts[2], y_all[:0],
                            feature_names=names, num_classes=num_classes)  # fmt: skip
        else:
            # No test split: scoring is the pipeline's business.
            nothing = (np.empty((0, X.shape[1]), X.dtype), target[:0].copy())
            splits = Splits.from_arrays(
                "arrays",
                (X[train], target[train]),
                (X[val], target[val]),
                nothing,
                feature_names=names,
                num_classes=num_classes,
                y_dtype=y_dtype,
            )
        datamodule = InMemoryDataModule.from_splits(splits, batch_size=self.batch_size, k=k, seed=seed)
        if self.method == "ipcae":
            selector = {"_target_": "ipcae.selectors.IndirectSelector", "embedding_dim": self.embedding_dim}
        else:
            weight = float(self.diversity_weight) if self.method == "gjsd" else 0.0
            selector = {"_target_": "ipcae.selectors.DirectSelector", "diversity_weight": weight}
        decoder = {"_target_": "ipcae.decoders.MLPDecoder", "hidden_sizes": [int(h) for h in self.hidden_sizes]}
        best = _keep_best_callback()
        device = str(self.device).lower()
        accelerator = DEVICES[device.split(":")[0]]
        devices: Any = [int(device.split(":")[1])] if ":" in device else 1
        rng_devices = []
        if accelerator in ("gpu", "auto") and torch.cuda.is_available():
            rng_devices = devices if isinstance(devices, list) else [torch.cuda.current_device()]
        with (
            _quiet(),
            tempfile.TemporaryDirectory(prefix="ipcae-sklearn-") as tmp,
            torch.random.fork_rng(devices=rng_devices),
        ):
            torch.manual_seed(seed)
            model = FeatureSelectionModule(
                num_features=X.shape[1],
                num_classes=num_classes or None,
                k=k,
                selector=selector,
                decoder=decoder,
                task=task,
                lr=float(self.learning_rate),
                name=self.method,
            )
            trainer = L.Trainer(
                max_epochs=int(self.max_epochs),
                accelerator=accelerator,
                devices=devices,
                logger=False,
                enable_checkpointing=False,
                enable_progress_bar=False,
                enable_model_summary=False,
                num_sanity_val_steps=0,
                limit_val_batches=1.0 if len(val) else 0,
                default_root_dir=tmp,
                callbacks=[TemperatureAnnealing(self.temperature_start, self.temperature_end), best],
            )
            trainer.fit(model, datamodule=datamodule)
        if best.state is not None:
            model.load_state_dict(best.state)
        return model.cpu(), best

    # --- selection -----------------------------------------------------------------------------

    def _get_support_mask(self) -> np.ndarray:
        check_is_fitted(self)
        mask = np.zeros(self.n_features_in_, dtype=bool)
        mask[self.selected_indices_] = True
        return mask

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.required = False  # without y: reconstruction
        tags.input_tags.sparse = True  # CSR batches, selection by sparse-dense products
        return tags
