"""Temperature schedules and the per-epoch logs, with the values the method fixes."""

from __future__ import annotations

import itertools
import math

import lightning as L
import pytest
import torch

from ipcae.callbacks import EpochTimer, SelectionMonitor, TemperatureAnnealing, annealed_temperature
from ipcae.data import InMemoryDataModule
from ipcae.errors import ConfigError
from ipcae.module import FeatureSelectionModule

SELECTOR = {"_target_": "ipcae.selectors.IndirectSelector"}
DECODER = {"_target_": "ipcae.decoders.MLPDecoder", "hidden_sizes": [16]}


def test_exponential_schedule_reference_values() -> None:
    callback = TemperatureAnnealing(start=10.0, end=0.01)
    epochs = 200
    values = [callback.temperature_at(e / epochs) for e in range(epochs)]
    assert values[0] == 10.0
    assert values[100] == pytest.approx(10.0 * 0.001**0.5)
    assert values[-1] == pytest.approx(10.0 * 0.001 ** (199 / 200))
    assert values[-1] == pytest.approx(0.01035, abs=1e-5)  # "about 0.0104"
    assert all(a > b for a, b in itertools.pairwise(values))


def test_schedules_are_floored_at_the_end_temperature() -> None:
    assert annealed_temperature(1.5, 10.0, 0.01) == 0.01
    assert annealed_temperature(2.0, 10.0, 0.01, "linear") == 0.01


def test_linear_schedule() -> None:
    assert annealed_temperature(0.0, 10.0, 0.01, "linear") == 10.0
    assert annealed_temperature(0.5, 10.0, 0.01, "linear") == pytest.approx(5.005)


def test_bad_schedule_names_are_rejected() -> None:
    with pytest.raises(ConfigError, match="cosine"):
        TemperatureAnnealing(schedule="cosine")
    with pytest.raises(ConfigError, match="every"):
        TemperatureAnnealing(every="batch")


class Recorder(L.Callback):
    """Records the temperature seen at every training step."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, int, float]] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.seen.append((trainer.current_epoch, trainer.global_step, pl_module.selector.temperature.item()))


def fit(
    callbacks: list[L.Callback], epochs: int = 4, tmp_path=None, steps_per_batch: int = 1
) -> tuple[L.Trainer, FeatureSelectionModule]:
    torch.manual_seed(0)
    data = InMemoryDataModule("digits", batch_size=256, steps_per_batch=steps_per_batch)
    model = FeatureSelectionModule(64, 10, k=5, selector=SELECTOR, decoder=DECODER)
    trainer = L.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=callbacks,
        default_root_dir=tmp_path,
    )
    trainer.fit(model, datamodule=data)
    return trainer, model


@pytest.mark.parametrize("every", ["epoch", "step"])
def test_temperature_is_set_during_training(every: str, tmp_path) -> None:
    recorder = Recorder()
    fit([TemperatureAnnealing(start=10.0, end=0.01, every=every), recorder], epochs=4, tmp_path=tmp_path)
    steps_per_epoch = math.ceil(1078 / 256)
    total = 4 * steps_per_epoch
    for epoch, step, temperature in recorder.seen:
        progress = epoch / 4 if every == "epoch" else step / total
        assert temperature == pytest.approx(10.0 * 0.001**progress, rel=1e-6)


def test_selection_monitor_logs_each_epoch(tmp_path) -> None:
    timer = EpochTimer()
    trainer, model = fit([TemperatureAnnealing(), SelectionMonitor(), timer], epochs=2, tmp_path=tmp_path)
    logged = trainer.callback_metrics
    for key in ("train/unique_pct", "val/unique_pct", "train/max_prob", "train/gjsd", "train/temperature"):
        assert key in logged, key
    indices = model.selector.selected_indices()
    assert logged["val/unique_pct"].item() == pytest.approx(100 * len(set(indices.tolist())) / 5)
    assert 0.0 <= logged["train/gjsd"].item() <= math.log(5) + 1e-6
    assert 0.0 < logged["train/max_prob"].item() <= 1.0
    assert logged["train/temperature"].item() == pytest.approx(10.0 * 0.001**0.5)
    assert len(timer.epoch_seconds) == 2 and all(s > 0 for s in timer.epoch_seconds)
    for key in ("train/loss", "train/accuracy", "val/loss", "val/accuracy"):
        assert key in logged, key


def test_grouped_batches_give_the_same_training_as_single_batches(tmp_path) -> None:
    # Results must not depend on how many mini-batches Lightning sees per step.
    _, single = fit([TemperatureAnnealing()], epochs=2, tmp_path=tmp_path, steps_per_batch=1)
    _, grouped = fit([TemperatureAnnealing()], epochs=2, tmp_path=tmp_path, steps_per_batch=3)
    for a, b in zip(single.parameters(), grouped.parameters(), strict=True):
        torch.testing.assert_close(a, b)


def test_per_step_temperature_refuses_grouped_batches(tmp_path) -> None:
    with pytest.raises(ConfigError, match="steps_per_batch=1"):
        fit([TemperatureAnnealing(every="step")], epochs=1, tmp_path=tmp_path, steps_per_batch=4)
