"""The LightningModule: a selector and a decoder trained jointly for one task."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
import torchmetrics
from hydra.utils import instantiate
from torch import Tensor, nn
from torch.nn import functional as F

from ipcae.errors import ConfigError, IpcaeError
from ipcae.selectors import Selector, check_k


class TrainingDiverged(IpcaeError):
    """The training loss is no longer finite."""


TASKS = ("classification", "reconstruction")


class FeatureSelectionModule(L.LightningModule):
    """Selector (K of D features) + decoder, trained on classification or reconstruction.

    ``selector`` and ``decoder`` are Hydra-style configs (dicts with ``_target_``) built here, once
    the data's size is known, so that checkpoints hold everything needed to rebuild the model.
    The loss is cross-entropy (classification) or MSE over all D features (reconstruction), plus
    the selector's own regularisation term. Validation and test use the hard argmax selection and
    compute their metrics over the whole split.
    """

    def __init__(
        self,
        num_features: int,
        num_classes: int | None,
        k: int,
        selector: dict[str, Any],
        decoder: dict[str, Any],
        task: str = "classification",
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        name: str = "ipcae",
    ) -> None:
        super().__init__()
        if task not in TASKS:
            raise ConfigError(f"task={task!r} is unknown: use one of {', '.join(TASKS)}")
        check_k(k, num_features)
        if task == "classification" and not num_classes:
            raise ConfigError("task=classification needs a dataset with class labels")
        self.save_hyperparameters()
        self.task = task
        self.selector: Selector = instantiate(selector, num_features=num_features, k=k)
        out_features = num_classes if task == "classification" else num_features
        self.decoder: nn.Module = instantiate(
            decoder, in_features=self.selector.out_features, out_features=out_features
        )
        # One collection per stage ("train" cannot be a ModuleDict key: it is nn.Module.train).
        self.train_metrics = self._stage_metrics()
        self.val_metrics = self._stage_metrics()
        self.test_metrics = self._stage_metrics()

    def _stage_metrics(self) -> torchmetrics.MetricCollection:
        # The loss is averaged over examples, weighted by batch size, so that the epoch value is the
        # loss of the whole split rather than a mean of batch means.
        metrics: dict[str, torchmetrics.Metric] = {"loss": torchmetrics.MeanMetric()}
        if self.task == "classification":
            metrics["accuracy"] = torchmetrics.Accuracy(task="multiclass", num_classes=self.hparams.num_classes)
        else:
            metrics["mse"] = torchmetrics.MeanSquaredError()
        return torchmetrics.MetricCollection(metrics)

    def forward(self, x: Tensor) -> Tensor:
        return self.decoder(self.selector(x))

    def task_loss(self, output: Tensor, x: Tensor, y: Tensor) -> Tensor:
        if self.task == "classification":
            return F.cross_entropy(output, y)
        return F.mse_loss(output, x)

    def _step(self, batch: tuple[Tensor, Tensor], stage: str) -> Tensor:
        x, y = batch
        output = self(x)
        loss = self.task_loss(output, x, y)
        metrics = getattr(self, f"{stage}_metrics")
        metrics["loss"].update(loss.detach(), weight=x.shape[0])
        if self.task == "classification":
            metrics["accuracy"].update(output.detach(), y)
        else:
            metrics["mse"].update(output.detach(), x)
        return loss

    def _log_stage(self, stage: str) -> None:
        # compute() synchronises across DDP ranks itself, so the logged values need no sync_dist.
        metrics = getattr(self, f"{stage}_metrics")
        values = metrics.compute()
        metrics.reset()
        if stage == "train" and not torch.isfinite(values["loss"]):  # one host sync per epoch
            raise TrainingDiverged(
                f"the training loss became {values['loss'].item()} in epoch {self.current_epoch}: "
                f"lower model.lr (now {self.hparams.lr}) or check the data for NaN or infinite values"
            )
        self.log_dict({f"{stage}/{name}": value for name, value in values.items()})

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        return self._step(batch, "train") + self.selector.regularization()

    def on_train_epoch_end(self) -> None:
        self._log_stage("train")

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._step(batch, "val")

    def on_validation_epoch_end(self) -> None:
        self._log_stage("val")

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._step(batch, "test")

    def on_test_epoch_end(self) -> None:
        self._log_stage("test")

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
