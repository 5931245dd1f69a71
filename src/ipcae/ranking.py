"""Methods that output a feature ranking (LassoNet): their top K, evaluated with a retrained decoder."""

from __future__ import annotations

import time
from typing import Any

import lightning as L
from omegaconf import DictConfig, OmegaConf

from ipcae.errors import ConfigError
from ipcae.lassonet_baseline import lassonet_ranking
from ipcae.results import summarize
from ipcae.retrain import retrain_decoder

RANKERS = ("lassonet",)


def train_ranker(cfg: DictConfig) -> dict[str, Any]:
    """Rank the features, keep the top K, train and test a decoder on them; return the results."""
    from ipcae.training import build_datamodule, model_k

    if cfg.model.ranker not in RANKERS:
        raise ConfigError(f"model.ranker={cfg.model.ranker!r} is unknown: use one of {', '.join(RANKERS)}")
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = build_datamodule(cfg)
    k = model_k(cfg, datamodule)
    options = OmegaConf.to_container(cfg.model.get("options") or {}, resolve=True)
    started = time.perf_counter()
    stop_at = k if cfg.model.get("path_until_k") else None
    ranking = lassonet_ranking(datamodule.load(), cfg.task.name, cfg.seed, stop_at=stop_at, **options)
    rank_seconds = time.perf_counter() - started
    indices = [int(i) for i in ranking[:k]]
    retrained = retrain_decoder(cfg, datamodule, indices, cfg.task.name)
    return summarize(
        cfg,
        datamodule,
        model_name=cfg.model.name,
        selector_name="LassoNet",
        task=cfg.task.name,
        indices=indices,
        test={name: value for name, value in retrained.items() if name != "val_loss"},
        reported="retrained",
        val={"loss": retrained.get("val_loss")},
        retrained=retrained,
        train_seconds=round(time.perf_counter() - started, 3),
        rank_seconds=round(rank_seconds, 3),
    )
