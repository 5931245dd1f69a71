"""Callbacks: Gumbel-softmax temperature annealing and per-epoch selection diagnostics."""

from __future__ import annotations

import time

import lightning as L
import torch

from ipcae.errors import ConfigError
from ipcae.metrics import unique_percentage
from ipcae.selectors import TemperatureControlled

SCHEDULES = ("exponential", "linear")
CADENCES = ("epoch", "step")


def annealed_temperature(progress: float, start: float, end: float, schedule: str = "exponential") -> float:
    """Temperature after a fraction ``progress`` of training, floored at ``end``.

    exponential: start * (end / start) ** progress; linear: start + (end - start) * progress.
    """
    if schedule == "exponential":
        value = start * (end / start) ** progress
    elif schedule == "linear":
        value = start + (end - start) * progress
    else:
        raise ConfigError(f"callbacks.temperature.schedule={schedule!r}: use one of {', '.join(SCHEDULES)}")
    return max(value, end)


class TemperatureAnnealing(L.Callback):
    """Sets the selector's temperature from ``start`` down to ``end`` during training.

    ``every="epoch"`` (the reference): T_e = start * (end / start) ** (e / E) for epochs
    e = 0..E-1, so the last epoch runs slightly above ``end``. ``every="step"`` uses the optimiser
    step count over the total number of steps instead.
    """

    def __init__(
        self, start: float = 10.0, end: float = 0.01, schedule: str = "exponential", every: str = "epoch"
    ) -> None:
        if not (start > 0 and end > 0):
            raise ConfigError(f"temperatures must be positive (start={start}, end={end})")
        if start < end:
            # The schedule is floored at ``end``: a start below it would silently run at ``end``.
            raise ConfigError(
                f"callbacks.temperature.start={start} is below callbacks.temperature.end={end}: set start >= end"
            )
        if every not in CADENCES:
            raise ConfigError(f"callbacks.temperature.every={every!r}: use one of {', '.join(CADENCES)}")
        annealed_temperature(0.0, start, end, schedule)  # validates the schedule name
        self.start, self.end, self.schedule, self.every = start, end, schedule, every

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        grouped = getattr(trainer.datamodule, "steps_per_batch", 1) if trainer.datamodule is not None else 1
        if self.every == "step" and grouped > 1:
            raise ConfigError(
                f"callbacks.temperature.every=step updates once per Lightning batch, which holds "
                f"{grouped} optimiser steps: set data.steps_per_batch=1 with it"
            )

    def temperature_at(self, progress: float) -> float:
        return annealed_temperature(progress, self.start, self.end, self.schedule)

    @staticmethod
    def _annealed(pl_module: L.LightningModule) -> TemperatureControlled | None:
        # Selectors without a temperature (gates, fixed indices) are left alone.
        selector = getattr(pl_module, "selector", None)
        return selector if isinstance(selector, TemperatureControlled) else None

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        selector = self._annealed(pl_module)
        if selector is not None and self.every == "epoch":
            selector.set_temperature(self.temperature_at(trainer.current_epoch / trainer.max_epochs))

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch, batch_idx: int) -> None:
        selector = self._annealed(pl_module)
        if selector is not None and self.every == "step":
            total = max(trainer.estimated_stepping_batches, 1)
            selector.set_temperature(self.temperature_at(trainer.global_step / total))

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        selector = self._annealed(pl_module)
        if selector is not None:
            pl_module.log("train/temperature", selector.temperature)


class SelectionMonitor(L.Callback):
    """Logs, once per epoch, how the noise-free selection looks.

    ``train/unique_pct`` and ``val/unique_pct``: 100 * distinct selected features / K, exactly what
    the decoder gets at evaluation; then whatever the selector's ``diagnostics()`` returns, under
    ``train/`` (the concrete selectors: ``max_prob`` and ``gjsd``).
    """

    @torch.no_grad()
    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        selector = pl_module.selector
        values = {"unique_pct": unique_percentage(selector.selected_indices()), **selector.diagnostics()}
        pl_module.log_dict({f"train/{name}": value for name, value in values.items()})

    @torch.no_grad()
    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            pl_module.log("val/unique_pct", unique_percentage(pl_module.selector.selected_indices()))


class EpochTimer(L.Callback):
    """Wall time of each training epoch, its validation included (``results.json: epoch_seconds``)."""

    def __init__(self) -> None:
        self.epoch_seconds: list[float] = []
        self._started = 0.0

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._started = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.epoch_seconds.append(time.perf_counter() - self._started)

    # Kept in checkpoints, so that a resumed run reports the times of all its epochs; restored only
    # when training resumes (Lightning also restores callbacks for validate / test at a checkpoint).
    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        checkpoint["ipcae_epoch_seconds"] = list(self.epoch_seconds)

    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        if trainer.state.fn == "fit":
            self.epoch_seconds = [float(s) for s in checkpoint.get("ipcae_epoch_seconds", [])]
