"""Every Hydra config composes, and the pieces it names instantiate."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import instantiate
from omegaconf import DictConfig, open_dict

from ipcae.data import InMemoryDataModule, dataset_info
from ipcae.training import build_list, build_model

CONF = Path(__file__).resolve().parents[1] / "conf"


def group_options(group: str) -> list[str]:
    """Selectable options of a group (``_base`` files are what the options extend, not options)."""
    return sorted(p.stem for p in (CONF / group).glob("*.yaml") if not p.stem.startswith("_"))


def compose_train(overrides: list[str], tmp_path: Path) -> DictConfig:
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    with open_dict(cfg):
        cfg.paths.output_dir = str(tmp_path)
        cfg.paths.log_dir = str(tmp_path)
    return cfg


@pytest.mark.parametrize("model", group_options("model"))
@pytest.mark.parametrize("task", group_options("task"))
@pytest.mark.parametrize("decoder", group_options("model/decoder"))
def test_model_configs_build_a_module(model: str, task: str, decoder: str, tmp_path: Path) -> None:
    overrides = [f"model={model}", f"task={task}", f"model/decoder={decoder}"]
    if model == "fixed":  # the one preset with a mandatory value: which columns to evaluate
        overrides.append(f"model.selector.indices=[{','.join(map(str, range(10)))}]")
    cfg = compose_train(overrides, tmp_path)
    if cfg.model.get("ranker"):  # rankers (LassoNet) have no module of their own; see test_baselines
        assert cfg.model.ranker == model
        return
    datamodule = InMemoryDataModule("digits")
    module = build_model(cfg, datamodule)
    # The all-features reference line selects every one of digits' 64 features whatever K is.
    assert module.selector.k == (64 if model == "all_features" else datamodule.k)
    assert module.task == task
    assert module.hparams.name == model


def test_selector_group_overrides_the_preset(tmp_path: Path) -> None:
    cfg = compose_train(["model=cae", "model/selector=indirect", "model.selector.embedding_dim=16"], tmp_path)
    module = build_model(cfg, InMemoryDataModule("digits"))
    assert type(module.selector).__name__ == "IndirectSelector"
    assert module.selector.embedding.shape == (10, 16)


def test_gjsd_preset_is_direct_with_a_diversity_weight(tmp_path: Path) -> None:
    cfg = compose_train(["model=gjsd"], tmp_path)
    assert cfg.model.selector._target_.endswith("DirectSelector")
    assert cfg.model.selector.diversity_weight > 0


@pytest.mark.parametrize("data", group_options("data"))
def test_data_configs_compose(data: str, tmp_path: Path) -> None:
    # A table names its file (nothing is read before setup).
    cfg = compose_train([f"data={data}", *(["data.path=any.csv"] if data == "table" else [])], tmp_path)
    assert cfg.data.name == data
    datamodule = instantiate(cfg.data)  # loads nothing until setup
    assert isinstance(datamodule, InMemoryDataModule)
    # K and batch size are declared once, in the dataset's registration.
    info = dataset_info(data)
    assert (datamodule.k, datamodule.batch_size) == (info.k, info.batch_size)
    assert cfg.data.k is None and cfg.data.batch_size is None


def test_k_and_batch_size_overrides_reach_the_run(tmp_path: Path) -> None:
    cfg = compose_train(["data=digits", "data.k=7", "data.batch_size=32"], tmp_path)
    datamodule = instantiate(cfg.data)
    assert (datamodule.k, datamodule.batch_size) == (7, 32)
    assert build_model(cfg, datamodule).selector.k == 7
    cfg = compose_train(["data=digits", "model.k=4"], tmp_path)
    assert build_model(cfg, instantiate(cfg.data)).selector.k == 4


PAPER_PRESETS = sorted(p.stem for p in (CONF / "experiment" / "paper").glob("*.yaml"))


@pytest.mark.parametrize("preset", PAPER_PRESETS)
def test_paper_presets_are_the_protocol(preset: str, tmp_path: Path) -> None:
    dataset, task = preset.rsplit("_", 1)
    cfg = compose_train([f"experiment=paper/{preset}", "model=ipcae"], tmp_path)
    assert (cfg.data.name, cfg.task.name) == (dataset, task)
    assert cfg.retrain is True and cfg.trainer.max_epochs == 200
    assert (cfg.data.shuffle, cfg.data.drop_last, cfg.data.drop_last_val) == (False, True, True)
    assert cfg.model.lr == 0.001 and cfg.model.optimizer._target_ == "torch.optim.Adam"
    assert cfg.callbacks.temperature.start == 10.0 and cfg.callbacks.temperature.every == "epoch"
    assert cfg.data.options == ({"impute": "paper"} if dataset == "mice_protein" else {})
    datamodule = instantiate(cfg.data)
    expected = {"mice_protein": (10, 16), "coil20": (50, 16)}.get(dataset, (50, 128))
    assert (datamodule.k, datamodule.batch_size) == expected


@pytest.mark.parametrize("trainer", group_options("trainer"))
def test_trainer_configs_compose(trainer: str, tmp_path: Path) -> None:
    cfg = compose_train([f"trainer={trainer}"], tmp_path)
    assert cfg.trainer._target_.startswith("lightning.")
    if trainer in ("default", "cpu"):
        instantiate(cfg.trainer, accelerator="cpu", logger=False)


@pytest.mark.parametrize("logger", group_options("logger"))
def test_logger_configs_instantiate(logger: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    cfg = compose_train([f"logger={logger}"], tmp_path)
    loggers = build_list(cfg.get("logger"))
    names = sorted(type(lg).__name__ for lg in loggers)
    expected = {"none": [], "csv": ["CSVLogger"], "wandb": ["CSVLogger", "WandbLogger"]}
    if logger in expected:
        assert names == expected[logger]
    else:
        assert "CSVLogger" in names


def test_callbacks_instantiate(tmp_path: Path) -> None:
    cfg = compose_train([], tmp_path)
    names = sorted(type(c).__name__ for c in build_list(cfg.callbacks))
    assert names == [
        "EpochTimer", "LastCheckpoint", "ModelCheckpoint", "SelectionImages", "SelectionMonitor", "StepProgressBar",
        "TemperatureAnnealing",
    ]  # fmt: skip
    # One file per callback: each can be dropped on its own, or all of them.
    cfg = compose_train(["~callbacks.progress_bar"], tmp_path)
    assert "StepProgressBar" not in {type(c).__name__ for c in build_list(cfg.callbacks)}
    assert build_list(compose_train(["callbacks=none"], tmp_path).get("callbacks")) == []


@pytest.mark.parametrize("optimizer", group_options("model/optimizer"))
def test_optimizer_and_scheduler_configs_build(optimizer: str, tmp_path: Path) -> None:
    cfg = compose_train([f"model/optimizer={optimizer}", "model/scheduler=cosine", "model.lr=0.01"], tmp_path)
    module = build_model(cfg, InMemoryDataModule("digits"))
    config = module.configure_optimizers()
    opt = config["optimizer"]
    assert type(opt).__name__.lower() == optimizer and opt.defaults["lr"] == 0.01
    assert type(config["lr_scheduler"]["scheduler"]).__name__ == "CosineAnnealingLR"
    default = build_model(compose_train([], tmp_path), InMemoryDataModule("digits")).configure_optimizers()
    assert type(default).__name__ == "Adam"


@pytest.mark.parametrize("name", group_options("debug") + [f"experiment={e}" for e in group_options("experiment")])
def test_debug_and_experiment_configs_compose(name: str, tmp_path: Path) -> None:
    override = name if name.startswith("experiment=") else f"debug={name}"
    cfg = compose_train([override], tmp_path)
    assert cfg.trainer.max_epochs > 0


def test_defaults_follow_the_reference_protocol(tmp_path: Path) -> None:
    cfg = compose_train([], tmp_path)
    assert cfg.trainer.max_epochs == 200
    assert cfg.model.lr == 0.001 and cfg.model.weight_decay == 0.0
    assert cfg.callbacks.temperature.start == 10.0 and cfg.callbacks.temperature.end == 0.01
    assert cfg.callbacks.model_checkpoint.monitor == "val/loss"
    assert cfg.model.decoder.hidden_sizes == [200]
    assert cfg.model.selector.noise == "per_example"


def test_eval_config_composes() -> None:
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("eval", overrides=["ckpt_path=x.ckpt", "data=mice_protein"])
    assert cfg.ckpt_path == "x.ckpt" and cfg.data.name == "mice_protein"
