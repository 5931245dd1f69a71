"""Callbacks for selectors that follow a schedule over the optimiser steps (Sequential Attention).

- :class:`TrainingSteps` tells a :class:`~ipcae.selectors.StepScheduled` selector how many optimiser
  steps the run will take, once, when training starts.
- :class:`CompleteSelectionCheckpoint` is the framework's best-validation-loss checkpoint restricted
  to epochs at which the selector's selection is final (``selector.selection_complete``), so that the
  reported features are the method's answer and not a provisional set from an earlier phase.

``conf/callbacks/training_steps.yaml`` adds TrainingSteps to whichever callback set is selected;
``model=seqattn`` includes it from its defaults list. A model preset cannot replace the callback
set's checkpoint (Hydra processes the ``callbacks`` group after ``model``), so TrainingSteps, with
``complete_selection_checkpoint=true``, turns the run's plain ModelCheckpoint into a
CompleteSelectionCheckpoint when training is set up (same instance and settings, subclass behaviour).
"""

from __future__ import annotations

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint

from ipcae.data.datamodule import IndexBatches
from ipcae.errors import ConfigError
from ipcae.selectors import StepScheduled


def optimiser_steps_per_epoch(loader: object) -> int:
    """Mini-batches (= optimiser steps of the module) in one epoch of ``loader``.

    The framework's loader hands Lightning groups of mini-batches (``data.steps_per_batch``) and the
    module steps once per mini-batch, so its length in Lightning batches is not the step count.
    """
    if isinstance(loader, IndexBatches):
        full, rest = divmod(loader.shard_size, loader.batch_size)
        return full + (1 if rest and not loader.drop_last else 0)
    return len(loader)  # type: ignore[arg-type]


class TrainingSteps(L.Callback):
    """Gives a step-scheduled selector the run's number of optimiser steps (max_epochs x steps per epoch).

    With ``complete_selection_checkpoint`` (and a step-scheduled selector) the run's ModelCheckpoint
    callbacks only consider epochs whose selection is complete (see the module docstring).
    """

    def __init__(self, complete_selection_checkpoint: bool = True) -> None:
        self.complete_selection_checkpoint = bool(complete_selection_checkpoint)

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if not (self.complete_selection_checkpoint and isinstance(getattr(pl_module, "selector", None), StepScheduled)):
            return
        for callback in trainer.callbacks:
            if type(callback) is ModelCheckpoint:
                callback.__class__ = CompleteSelectionCheckpoint

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        selector = getattr(pl_module, "selector", None)
        if not isinstance(selector, StepScheduled):
            return
        if trainer.max_epochs is None or trainer.max_epochs < 1:
            raise ConfigError(
                f"trainer.max_epochs={trainer.max_epochs} leaves the length of training open: a step-scheduled "
                "selector (Sequential Attention) needs a positive trainer.max_epochs"
            )
        selector.set_total_steps(trainer.max_epochs * optimiser_steps_per_epoch(trainer.train_dataloader))


class CompleteSelectionCheckpoint(ModelCheckpoint):
    """ModelCheckpoint that considers only epochs whose selection is final.

    For selectors without ``selection_complete`` it is a plain ModelCheckpoint.
    """

    @staticmethod
    def _complete(pl_module: L.LightningModule) -> bool:
        return bool(getattr(getattr(pl_module, "selector", None), "selection_complete", True))

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._complete(pl_module):
            super().on_validation_end(trainer, pl_module)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._complete(pl_module):
            super().on_train_epoch_end(trainer, pl_module)
