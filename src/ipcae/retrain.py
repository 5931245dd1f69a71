"""Retrained-decoder evaluation: a fresh decoder trained on exactly K given features.

The protocol for methods that only output feature indices (STG, LassoNet), and a second number for
CAE and IP-CAE: same decoder architecture, optimiser and epochs as the run, model selection on
validation loss, test metrics at the selected checkpoint.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from omegaconf import DictConfig, OmegaConf

from ipcae.data import InMemoryDataModule
from ipcae.module import FeatureSelectionModule


def retrain_decoder(
    cfg: DictConfig, datamodule: InMemoryDataModule, indices: Sequence[int], task: str
) -> dict[str, Any]:
    """Train a decoder of ``cfg.model.decoder``'s architecture on columns ``indices``; test it."""
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    model = FeatureSelectionModule(
        num_features=datamodule.num_features,
        num_classes=datamodule.num_classes if task == "classification" else None,
        k=len(indices),
        selector={"_target_": "ipcae.selectors.FixedSelector", "indices": [int(i) for i in indices]},
        decoder=OmegaConf.to_container(cfg.model.decoder, resolve=True),
        task=task,
        lr=cfg.model.get("lr", 1e-3),
        weight_decay=cfg.model.get("weight_decay", 0.0),
        name=f"{cfg.model.name}-retrained",
        optimizer=OmegaConf.to_container(cfg.model.optimizer, resolve=True) if cfg.model.get("optimizer") else None,
    )
    trainer_cfg = OmegaConf.to_container(cfg.trainer, resolve=True)
    with tempfile.TemporaryDirectory(prefix="ipcae-retrain-") as tmp:
        checkpoint = ModelCheckpoint(dirpath=tmp, monitor="val/loss", mode="min", save_top_k=1)
        trainer = L.Trainer(
            max_epochs=trainer_cfg.get("max_epochs", 200),
            accelerator=trainer_cfg.get("accelerator", "auto"),
            devices=1,
            logger=False,
            callbacks=[checkpoint],
            enable_progress_bar=False,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            default_root_dir=tmp,
        )
        trainer.fit(model, datamodule=datamodule)
        best = checkpoint.best_model_path or None
        (metrics,) = trainer.test(model, datamodule=datamodule, ckpt_path=best, verbose=False)
    wanted = ("accuracy", "loss") if task == "classification" else ("mse", "loss")
    results = {name: float(metrics[f"test/{name}"]) for name in wanted}
    # The validation loss of the selected checkpoint: what a penalty weight of a ranking method
    # (STG's lambda) is chosen on, since its reported numbers come from this decoder.
    if checkpoint.best_model_score is not None:
        results["val_loss"] = float(checkpoint.best_model_score)
    return results
