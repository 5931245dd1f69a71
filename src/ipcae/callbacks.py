"""Callbacks: Gumbel-softmax temperature annealing and per-epoch selection diagnostics."""

from __future__ import annotations

import math
import time
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import TQDMProgressBar
from lightning.pytorch.callbacks.progress.tqdm_progress import convert_inf

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
        if stage == "fit" and unbounded(trainer):
            raise ConfigError(
                "trainer.max_epochs=-1 without trainer.max_steps never ends and gives the temperature "
                "schedule no length: set trainer.max_epochs=N or +trainer.max_steps=N"
            )
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

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # The real length of the run: max_steps may end it before max_epochs (or set it alone).
        self.total_epochs, self.total_steps = training_length(trainer)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        selector = self._annealed(pl_module)
        if selector is not None and self.every == "epoch":
            selector.set_temperature(self.temperature_at(trainer.current_epoch / self.total_epochs))

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch, batch_idx: int) -> None:
        selector = self._annealed(pl_module)
        if selector is not None and self.every == "step":
            selector.set_temperature(self.temperature_at(trainer.global_step / max(self.total_steps, 1)))

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        selector = self._annealed(pl_module)
        if selector is not None:
            pl_module.log("train/temperature", selector.temperature, sync_dist=True)


def unbounded(trainer: L.Trainer) -> bool:
    return trainer.max_epochs in (None, -1) and trainer.max_steps in (None, -1)


def optimizer_steps_per_epoch(trainer: L.Trainer) -> int:
    """Optimiser steps in one epoch: Lightning's batch count, unless a batch groups several steps."""
    loader = trainer.train_dataloader
    if getattr(loader, "group", 1) > 1:
        return int(loader.optimizer_steps)
    return int(trainer.num_training_batches)


def training_length(trainer: L.Trainer) -> tuple[int, int]:
    """(epochs, optimiser steps) the run will take, from max_epochs and max_steps, whichever ends it first."""
    per_epoch = max(optimizer_steps_per_epoch(trainer), 1)
    epochs = math.inf if trainer.max_epochs in (None, -1) else trainer.max_epochs
    steps = epochs * per_epoch
    if trainer.max_steps not in (None, -1):
        steps = min(steps, trainer.max_steps)
        epochs = min(epochs, math.ceil(trainer.max_steps / per_epoch))
    if math.isinf(epochs):
        raise ConfigError("the run has no length: set trainer.max_epochs or trainer.max_steps")
    return int(epochs), int(steps)


class StepProgressBar(TQDMProgressBar):
    """Lightning's tqdm bar, counting optimiser steps rather than Lightning batches.

    A Lightning batch of :class:`ipcae.data.InMemoryDataModule` holds up to ``data.steps_per_batch``
    mini-batches, so the plain bar would show 3/3 for an epoch of 41 optimiser steps.
    """

    def on_train_epoch_start(self, trainer: L.Trainer, *args: Any) -> None:
        super().on_train_epoch_start(trainer, *args)
        self._epoch_first_step = trainer.global_step
        per_epoch = optimizer_steps_per_epoch(trainer)
        if trainer.max_steps not in (None, -1):
            per_epoch = min(per_epoch, trainer.max_steps - trainer.global_step)
        self.train_progress_bar.total = convert_inf(per_epoch)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        done = trainer.global_step - self._epoch_first_step
        bar = self.train_progress_bar
        if bar is not None and self._should_update(done, bar.total):
            # tqdm's own API (Lightning's helper for this is private).
            bar.n = done
            bar.refresh()
            bar.set_postfix(self.get_metrics(trainer, pl_module))


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
        # Every rank holds the same selector: sync_dist only averages equal values (and silences
        # Lightning's warning about epoch-level logs under DDP).
        pl_module.log_dict({f"train/{name}": value for name, value in values.items()}, sync_dist=True)

    @torch.no_grad()
    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            pl_module.log("val/unique_pct", unique_percentage(pl_module.selector.selected_indices()), sync_dist=True)


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


class SelectionImages(L.Callback):
    """Per-epoch pictures of the selection for TensorBoard and W&B (nothing for other loggers).

    ``selection/probabilities``: the selector's rows x D probabilities (gates: 1 x D) as a heatmap;
    for image data (feature names ``px_<row>_<col>``) also ``selection/pixels``, how many of the
    K rows chose each pixel, on the image grid. Every ``every_n_epochs`` epochs and after the last.
    """

    def __init__(self, every_n_epochs: int = 1) -> None:
        if every_n_epochs < 1:
            raise ConfigError(f"callbacks.selection_images.every_n_epochs={every_n_epochs} must be >= 1")
        self.every_n_epochs = every_n_epochs

    @staticmethod
    def _image_loggers(trainer: L.Trainer) -> list[Any]:
        from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger

        return [lg for lg in trainer.loggers if isinstance(lg, TensorBoardLogger | WandbLogger)]

    @torch.no_grad()
    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        loggers = self._image_loggers(trainer)
        last = trainer.current_epoch + 1 >= (trainer.max_epochs or 0) > 0
        if not loggers or not trainer.is_global_zero:
            return
        if (trainer.current_epoch + 1) % self.every_n_epochs and not last:
            return
        from ipcae.plots import image_shape, pixel_mask, selection_matrix

        images = {"selection/probabilities": normalised(selection_matrix(pl_module.selector))}
        names = getattr(trainer.datamodule, "feature_names", None)
        shape = image_shape(names) if names else None
        if shape is not None:
            images["selection/pixels"] = normalised(pixel_mask(pl_module.selector.selected_indices().tolist(), shape))
        for logger in loggers:
            log_images(logger, images, trainer.global_step, trainer.current_epoch)


def normalised(image: Any) -> Any:
    top = float(image.max())
    return image / top if top > 0 else image


def log_images(logger: Any, images: dict[str, Any], step: int, epoch: int) -> None:
    from lightning.pytorch.loggers import TensorBoardLogger

    if isinstance(logger, TensorBoardLogger):
        for name, image in images.items():
            logger.experiment.add_image(name, image, global_step=step, dataformats="HW")
    else:
        import wandb

        # Upscaled so that a 10 x 64 heatmap is visible; nearest keeps the cells sharp.
        logged = {name: wandb.Image(_upscaled(image), caption=f"epoch {epoch}") for name, image in images.items()}
        logger.experiment.log({**logged, "trainer/global_step": step})


def _upscaled(image: Any, minimum: int = 128) -> Any:
    import numpy as np

    factor = max(1, minimum // max(1, min(image.shape)))
    return (np.kron(image, np.ones((factor, factor))) * 255).astype("uint8")
