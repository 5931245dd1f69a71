"""The LightningModule: a selector and a decoder trained jointly for one task."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
import torchmetrics
from torch import Tensor, nn
from torch.nn import functional as F

from ipcae.checkpoints import build
from ipcae.data.rows import is_sparse, to_dense
from ipcae.errors import ConfigError, IpcaeError
from ipcae.selectors import FeatureSelector, check_k


class TrainingDiverged(IpcaeError):
    """The training loss is no longer finite."""


TASKS = ("classification", "regression", "reconstruction")


class FeatureSelectionModule(L.LightningModule):
    """Selector (K of D features) + decoder, trained on classification, regression or reconstruction.

    ``selector`` and ``decoder`` are Hydra-style configs (dicts with ``_target_``) built here, once
    the data's size is known, so that checkpoints hold everything needed to rebuild the model.
    The loss is cross-entropy (classification), MSE on a float target (regression) or MSE over all
    D features (reconstruction), plus
    the selector's own regularisation term. Validation and test use the hard selection and
    compute their metrics over the whole split.

    ``optimizer`` is a partial config (``_partial_: true``) called with the parameters, ``lr`` and
    ``weight_decay``; ``scheduler``, if given, a partial called with the optimiser and stepped
    once per epoch. ``metrics`` adds torchmetrics metrics to validation and test, each a partial
    config called with ``num_classes`` on classification: they are updated with (logits, labels)
    on classification and (reconstruction, input) otherwise, and reported under their key.
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
        optimizer: dict[str, Any] | None = None,
        scheduler: dict[str, Any] | None = None,
        metrics: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if task not in TASKS:
            raise ConfigError(f"task={task!r} is unknown: use one of {', '.join(TASKS)}")
        check_k(k, num_features)
        if task == "classification" and not num_classes:
            raise ConfigError("task=classification needs a dataset with class labels")
        self.save_hyperparameters()
        self.task = task
        # build(): only allowed classes, since these configs are read back from checkpoints.
        self.selector: FeatureSelector = build(selector, "selector", "model.selector", num_features=num_features, k=k)
        if not isinstance(self.selector, FeatureSelector):
            raise ConfigError(
                f"model.selector._target_={selector.get('_target_')!r} is not a FeatureSelector: "
                "subclass ipcae.selectors.FeatureSelector"
            )
        out_features = {"classification": num_classes, "regression": 1}.get(task, num_features)
        self.decoder: nn.Module = build(
            decoder, "decoder", "model.decoder", in_features=self.selector.out_features, out_features=out_features
        )
        self.val_metrics = self._stage_metrics()
        self.test_metrics = self._stage_metrics()
        # Training metrics are plain running sums (loss * n, correct, n): torchmetrics' per-update
        # bookkeeping costs more than a Mice Protein training step.
        self._train_sums: Tensor | None = None
        self._train_count = 0
        # Each training batch from InMemoryDataModule holds several mini-batches (G x B x D) and the
        # optimiser steps once per mini-batch here, so Lightning's per-batch cost is paid once per group.
        self.automatic_optimization = False

    def _stage_metrics(self) -> torchmetrics.MetricCollection:
        # The loss is averaged over examples, weighted by batch size, so that the epoch value is the
        # loss of the whole split rather than a mean of batch means.
        metrics: dict[str, torchmetrics.Metric] = {"loss": torchmetrics.MeanMetric()}
        if self.task == "classification":
            metrics["accuracy"] = torchmetrics.Accuracy(task="multiclass", num_classes=self.hparams.num_classes)
        else:
            metrics["mse"] = torchmetrics.MeanSquaredError()
        for name, config in (self.hparams.metrics or {}).items():
            factory = build(config, "metric", f"model.metrics.{name}")
            metric = factory(num_classes=self.hparams.num_classes) if self.task == "classification" else factory()
            if not isinstance(metric, torchmetrics.Metric):
                raise ConfigError(f"model.metrics.{name} is a {type(metric).__name__}, not a torchmetrics Metric")
            metrics[name] = metric
        return torchmetrics.MetricCollection(metrics)

    def forward(self, x: Tensor) -> Tensor:
        return self.decoder(self.selector(x))

    def task_loss(self, output: Tensor, x: Tensor, y: Tensor) -> Tensor:
        if self.task == "classification":
            return F.cross_entropy(output, y)
        if self.task == "regression":
            return F.mse_loss(output.squeeze(-1), y)
        return F.mse_loss(output, to_dense(x))

    def _step(self, batch: tuple[Tensor, Tensor], stage: str) -> Tensor:
        x, y = batch
        output = self(x)
        loss = self.task_loss(output, x, y)
        metrics = getattr(self, f"{stage}_metrics")
        metrics["loss"].update(loss.detach(), weight=x.shape[0])
        # Metrics compare the output with what the task predicts: labels, a numeric target, or the input.
        target = y if self.task in ("classification", "regression") else to_dense(x)
        prediction = output.detach().squeeze(-1) if self.task == "regression" else output.detach()
        for name, metric in metrics.items():
            if name != "loss":
                metric.update(prediction, target)
        return loss

    def _log_stage(self, stage: str) -> None:
        # compute() synchronises across DDP ranks itself; sync_dist then only averages equal values,
        # and keeps Lightning from warning about unsynchronised epoch-level logs.
        metrics = getattr(self, f"{stage}_metrics")
        values = metrics.compute()
        metrics.reset()
        self.log_dict({f"{stage}/{name}": value for name, value in values.items()}, sync_dist=True)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        xs, ys = batch
        # A single mini-batch (a plain DataLoader, or sparse rows), or a G x B x D stack of them.
        pairs = [(xs, ys)] if is_sparse(xs) or xs.dim() == 2 else zip(xs, ys, strict=True)
        optimizer = self.optimizers()
        for x, y in pairs:
            output = self(x)
            loss = self.task_loss(output, x, y)
            total = loss + self.selector.regularization()
            optimizer.zero_grad(set_to_none=True)
            self.manual_backward(total)
            optimizer.step()
            self._accumulate_train(loss.detach(), output.detach(), y)

    def _accumulate_train(self, loss: Tensor, output: Tensor, y: Tensor) -> None:
        # Device-side sums and a host-side count: nothing here waits for the device.
        n = len(y)
        correct = (output.argmax(-1) == y).sum().to(loss.dtype) if self.task == "classification" else loss * 0
        sums = torch.stack([loss * n, correct])
        self._train_sums = sums if self._train_sums is None else self._train_sums + sums
        self._train_count += n

    def on_train_epoch_start(self) -> None:
        self._train_sums, self._train_count = None, 0

    def on_train_epoch_end(self) -> None:
        # Manual optimisation: Lightning leaves stepping the scheduler to the module.
        scheduler = self.lr_schedulers()
        if scheduler is not None:
            scheduler.step()
        if self._train_sums is None:
            return
        (loss_sum, correct), n = self._train_sums, self._train_count
        self._train_sums = None
        loss = loss_sum / n
        if not torch.isfinite(loss):  # one host sync per epoch
            raise TrainingDiverged(
                f"the training loss became {loss.item()} in epoch {self.current_epoch}: "
                f"lower model.lr (now {self.hparams.lr}) or check the data for NaN or infinite values"
            )
        # Training shards are of equal size on every rank, so the mean of rank means is exact.
        values = {"train/loss": loss}
        values["train/accuracy" if self.task == "classification" else "train/mse"] = (
            correct / n if self.task == "classification" else loss
        )
        self.log_dict(values, sync_dist=True)

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._step(batch, "val")

    def on_validation_epoch_end(self) -> None:
        self._log_stage("val")

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._step(batch, "test")

    def on_test_epoch_end(self) -> None:
        self._log_stage("test")

    def configure_optimizers(self) -> Any:
        optimizer_config = self.hparams.optimizer
        factory = build(optimizer_config, "optimizer", "model.optimizer") if optimizer_config else torch.optim.Adam
        optimizer = factory(self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
        if not self.hparams.scheduler:
            return optimizer
        scheduler = build(self.hparams.scheduler, "scheduler", "model.scheduler")(optimizer)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}
