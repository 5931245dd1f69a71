"""Never wrong, never lost, never unsafe: crafted checkpoints, signals, concurrent runs, exact resume,
bad input, full disks and damaged data (docs/reliability.md lists which test covers which case)."""

from __future__ import annotations

import errno
import json
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from ipcae.checkpoints import CheckpointError, SafeCheckpointIO, build, load_checkpoint, locate_class

ROOT = Path(__file__).resolve().parents[1]
FAST = ("threads=1", "logger=none", "~callbacks.progress_bar")
# eval.py's config has no callbacks, logger or threads.
FAST_FOR = {"train.py": FAST, "eval.py": ()}


def command(script: str, *overrides: str) -> list[str]:
    return [sys.executable, str(ROOT / "src" / script), *overrides]


def environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    return {**os.environ, "WANDB_MODE": "offline", **(extra or {})}


def run(script: str, *overrides: str, env: dict[str, str] | None = None, cwd: Path = ROOT):
    return subprocess.run(
        command(script, *overrides), capture_output=True, text=True, cwd=cwd, env=environment(env), timeout=600
    )


def start(script: str, *overrides: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        command(script, *overrides), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        env=environment(env),
    )  # fmt: skip


def checkpoint_epoch(path: Path) -> int:
    try:
        return int(torch.load(path, map_location="cpu", weights_only=True)["epoch"])
    except Exception:  # not there yet (written atomically, so never half-written)
        return -1


def wait_for_epoch(proc: subprocess.Popen, last: Path, epoch: int, timeout: float = 300) -> int:
    """Poll until ``last`` holds at least ``epoch``; return the epoch seen."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen = checkpoint_epoch(last) if last.is_file() else -1
        if seen >= epoch:
            return seen
        assert proc.poll() is None, f"the run ended before epoch {epoch}: {proc.stderr.read()[-3000:]}"
        time.sleep(0.005)
    raise AssertionError(f"no checkpoint of epoch {epoch} within {timeout}s")


def results(folder: Path) -> dict:
    return json.loads((folder / "results.json").read_text())


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


# --- never unsafe: checkpoints -----------------------------------------------------------------


class _Payload:
    """Unpickling this creates ``marker``: stands for any code a crafted pickle could run."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _hparams(selector: dict) -> dict:
    return {
        "num_features": 64, "num_classes": 10, "k": 10, "task": "classification", "name": "ipcae",
        "selector": selector, "decoder": {"_target_": "ipcae.decoders.MLPDecoder"},
    }  # fmt: skip


def _hparams_checkpoint(path: Path, selector: dict) -> Path:
    # Only plain values: loads with weights_only=True, the danger is what it asks to instantiate.
    torch.save({"epoch": 0, "state_dict": {}, "hyper_parameters": _hparams(selector)}, path)
    return path


def _payloads(marker: Path) -> dict[str, dict]:
    return {
        "exec": {"_target_": "builtins.exec", "_args_": [f"open({str(marker)!r}, 'w')"]},
        "bytes_bytesio_torch_load": {
            "_target_": "torch.load",
            "f": {"_target_": "io.BytesIO", "_args_": [{"_target_": "builtins.bytes", "_args_": [[1, 2]]}]},
            "weights_only": False,
        },
        "nested_in_a_selector": {
            "_target_": "ipcae.selectors.IndirectSelector",
            "embedding_dim": {"_target_": "os.system", "_args_": [f"touch {marker}"]},
        },
        "interpolation": {
            "_target_": "ipcae.selectors.IndirectSelector",
            "embedding_dim": "${oc.decode:'{_target_: os.system, _args_: [touch " + str(marker) + "]}'}",
        },
    }


@pytest.mark.parametrize("payload", ["exec", "bytes_bytesio_torch_load", "nested_in_a_selector", "interpolation"])
def test_crafted_hyper_parameters_are_refused(tmp_path: Path, payload: str) -> None:
    from ipcae.module import FeatureSelectionModule

    marker = tmp_path / "marker"
    with pytest.raises(CheckpointError):
        FeatureSelectionModule(**_hparams(_payloads(marker)[payload]))
    assert not marker.exists()


@pytest.mark.parametrize("script", ["eval.py", "train.py"])
def test_crafted_checkpoints_never_run_through_the_command_line(tmp_path: Path, script: str) -> None:
    marker = tmp_path / "marker"
    pickled = tmp_path / "pickle.ckpt"
    pickled.write_bytes(pickle.dumps({"state_dict": {}, "x": _Payload(marker)}))
    # torch.save-format payload too (a zip archive whose data.pkl runs code).
    zipped = tmp_path / "zipped.ckpt"
    torch.save({"state_dict": {}, "x": _Payload(marker)}, zipped)
    chain = _hparams_checkpoint(tmp_path / "chain.ckpt", _payloads(marker)["bytes_bytesio_torch_load"])
    for i, ckpt in enumerate((pickled, zipped, chain)):
        if script == "train.py" and ckpt is chain:
            continue  # train builds its model from the command line's config; ckpt_path only restores
        overrides = (f"ckpt_path={ckpt}", f"hydra.run.dir={tmp_path / str(i)}", "trainer.max_epochs=1")
        proc = run(script, *overrides, *FAST_FOR[script], env={"TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1"})
        assert proc.returncode == 2, proc.stderr[-3000:]
        assert "Traceback" not in proc.stderr
        (line,) = error_lines(proc.stderr)
        assert str(ckpt) in line or "torch.load" in line
        assert not marker.exists(), f"{ckpt.name} ran code"
        assert not (tmp_path / str(i) / "results.json").exists()


def test_user_selector_subclass_stays_loadable_functions_do_not(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "my_lab_selectors.py").write_text(
        textwrap.dedent("""
        from ipcae.selectors import FixedSelector

        class FirstK(FixedSelector):
            def __init__(self, num_features, k):
                super().__init__(num_features, k, indices=list(range(k)))

        def factory(num_features, k):
            return FirstK(num_features, k)
        """)
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    selector = build({"_target_": "my_lab_selectors.FirstK"}, "selector", "model.selector", num_features=8, k=3)
    assert selector.selected_indices().tolist() == [0, 1, 2]
    with pytest.raises(CheckpointError, match="not a subclass"):
        locate_class("my_lab_selectors.factory", "selector", "model.selector")
    with pytest.raises(CheckpointError, match="not a subclass"):
        locate_class("torch.nn.Linear", "selector", "model.selector")  # a module, but no selector
    with pytest.raises(CheckpointError, match="refused"):
        locate_class("subprocess.Popen", "decoder", "model.decoder")


def test_text_file_directory_and_truncated_checkpoint_are_one_line_each(tmp_path: Path) -> None:
    text = tmp_path / "notes.ckpt"
    text.write_text("not a checkpoint\n")
    good = tmp_path / "good.ckpt"
    torch.save({"state_dict": {"w": torch.ones(100)}, "epoch": 1}, good)
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(good.read_bytes()[:200])
    for bad in (text, tmp_path, truncated, tmp_path / "missing.ckpt"):
        with pytest.raises(CheckpointError, match=str(bad).replace(".", r"\.")):
            load_checkpoint(bad)
    assert load_checkpoint(good)["epoch"] == 1


# --- never lost: signals, concurrent runs, full disks ------------------------------------------


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_mid_run_is_a_failure_with_a_checkpoint_to_continue(tmp_path: Path, signum: int, status: int) -> None:
    run_dir = tmp_path / "run"
    proc = start("train.py", f"hydra.run.dir={run_dir}", "trainer.max_epochs=500", *FAST)
    wait_for_epoch(proc, run_dir / "checkpoints" / "last.ckpt", 1)
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == status, stderr[-3000:]
    assert "Traceback" not in stderr
    (line,) = error_lines(stderr)
    assert signal.Signals(signum).name in line and "resume=true" in line
    failure = json.loads((run_dir / "failed.json").read_text())
    assert failure["interrupted"] == signal.Signals(signum).name
    assert not (run_dir / "results.json").exists()
    assert checkpoint_epoch(run_dir / "checkpoints" / "last.ckpt") >= 1
    assert (run_dir / "running.json").is_file()  # what a store's re-launch looks for


def test_sigterm_mid_sweep_stops_it_with_the_summary(tmp_path: Path) -> None:
    proc = start("train.py", "-m", "seed=0,1,2", "trainer.max_epochs=500", f"hydra.sweep.dir={tmp_path}", *FAST)
    wait_for_epoch(proc, tmp_path / "0" / "checkpoints" / "last.ckpt", 1)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 143, stderr[-3000:]
    assert "1 job(s) of the sweep failed" in stderr and "sweep was interrupted by SIGTERM" in stderr
    assert json.loads((tmp_path / "0" / "failed.json").read_text())["interrupted"] == "SIGTERM"
    assert not (tmp_path / "1").exists()  # the sweep stopped: later jobs never started


def test_two_runs_started_together_finish_in_their_own_folders(tmp_path: Path) -> None:
    procs = [start("train.py", f"paths.log_dir={tmp_path}", "trainer.max_epochs=1", f"seed={s}", *FAST) for s in (0, 1)]
    for proc in procs:
        _, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, stderr[-3000:]
    folders = sorted(p.parent for p in (tmp_path / "train" / "runs").glob("*/results.json"))
    assert len(folders) == 2
    assert sorted(results(f)["seed"] for f in folders) == [0, 1]


def test_a_full_disk_leaves_no_partial_or_temporary_file(tmp_path: Path, monkeypatch) -> None:
    from omegaconf import OmegaConf

    from ipcae.cli import StorageError, find_user_error
    from ipcae.store import save_run

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    ckpt = tmp_path / "checkpoints" / "last.ckpt"
    with pytest.raises(OSError) as caught:
        SafeCheckpointIO().save_checkpoint({"state_dict": {"w": torch.ones(3)}}, ckpt)
    cfg = OmegaConf.create({"data": {"name": "digits"}, "task": {"name": "classification"},
                            "model": {"name": "ipcae"}, "seed": 0})  # fmt: skip
    with pytest.raises(OSError):
        save_run(tmp_path / "store", cfg, {"test": {}}, tmp_path)
    left = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert left == [], left  # neither a truncated file under its final name nor a temporary one
    error = find_user_error(caught.value)
    assert isinstance(error, StorageError) and "No space left on device" in str(error)


# --- exact resume ------------------------------------------------------------------------------


def _killed_and_resumed(tmp_path: Path, kill_at: int, overrides: tuple[str, ...], env: dict | None = None):
    run_dir = tmp_path / "killed"
    proc = start("train.py", f"hydra.run.dir={run_dir}", *overrides, env=env)
    seen = wait_for_epoch(proc, run_dir / "checkpoints" / "last.ckpt", kill_at)
    proc.kill()  # SIGKILL: no handler runs, the state is what the last checkpoint holds
    proc.wait(timeout=60)
    assert not (run_dir / "results.json").exists()
    proc = run("train.py", f"hydra.run.dir={run_dir}", *overrides, "resume=true", env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return results(run_dir), seen


def _uninterrupted(tmp_path: Path, overrides: tuple[str, ...], env: dict | None = None) -> dict:
    proc = run("train.py", f"hydra.run.dir={tmp_path / 'whole'}", *overrides, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return results(tmp_path / "whole")


def _assert_same_run(resumed: dict, whole: dict, resumed_dir: Path, whole_dir: Path) -> None:
    for key in ("selected_indices", "test", "best_epoch", "epochs", "val", "retrained"):
        assert resumed.get(key) == whole.get(key), key
    assert len(resumed["epoch_seconds"]) == len(whole["epoch_seconds"])
    assert "resumed_from_epoch" not in whole
    # The reported numbers come from the best epoch, which may precede the interruption: the final
    # weights and optimiser state show that every epoch after it was the same too.
    a, b = (load_checkpoint(d / "checkpoints" / "last.ckpt") for d in (resumed_dir, whole_dir))
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for name, tensor in a["state_dict"].items():
        assert torch.equal(tensor, b["state_dict"][name]), name
    assert torch.equal(a["optimizer_states"][0]["state"][0]["exp_avg"], b["optimizer_states"][0]["state"][0]["exp_avg"])


def test_kill_9_and_resume_ends_as_the_uninterrupted_run_digits(tmp_path: Path) -> None:
    overrides = ("model=cae", "trainer.max_epochs=8", "retrain=true", *FAST)
    resumed, seen = _killed_and_resumed(tmp_path, 3, overrides)
    assert resumed["resumed_from_epoch"] == seen + 1 and 3 < resumed["resumed_from_epoch"] < 8
    _assert_same_run(resumed, _uninterrupted(tmp_path, overrides), tmp_path / "killed", tmp_path / "whole")


@pytest.mark.slow  # two 50-epoch Mice Protein runs, about a minute on a loaded 2-core machine
def test_kill_9_at_epoch_20_of_50_mice_protein_resumes_exactly(tmp_path: Path, real_data_dir: Path) -> None:
    overrides = ("data=mice_protein", "trainer.max_epochs=50", *FAST)
    env = {"IPCAE_DATA_DIR": str(real_data_dir)}
    resumed, _ = _killed_and_resumed(tmp_path, 20, overrides, env)
    assert 20 < resumed["resumed_from_epoch"] < 50
    _assert_same_run(resumed, _uninterrupted(tmp_path, overrides, env), tmp_path / "killed", tmp_path / "whole")


def test_store_resumes_an_interrupted_run_under_the_same_key(tmp_path: Path) -> None:
    store = tmp_path / "store"
    overrides = ("model=cae", "trainer.max_epochs=8", f"store_dir={store}", *FAST)
    proc = start("train.py", f"hydra.run.dir={tmp_path / 'first'}", *overrides)
    wait_for_epoch(proc, tmp_path / "first" / "checkpoints" / "last.ckpt", 3)
    proc.kill()
    proc.wait(timeout=60)
    (entry,) = store.glob("digits/classification/cae/seed0-*")
    assert (entry / "running.json").is_file() and not (entry / "results.json").exists()
    proc = run("train.py", f"hydra.run.dir={tmp_path / 'second'}", *overrides)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "resuming the interrupted run" in proc.stdout
    stored = json.loads((entry / "results.json").read_text())
    assert stored["resumed_from_epoch"] > 3 and not (entry / "running.json").exists()
    whole = _uninterrupted(tmp_path, ("model=cae", "trainer.max_epochs=8", f"store_dir={tmp_path / 'fresh'}", *FAST))
    (fresh,) = (tmp_path / "fresh").glob("digits/classification/cae/seed0-*")
    assert fresh.name == entry.name  # resuming does not change the store key
    _assert_same_run(stored, whole, tmp_path / "second", tmp_path / "whole")


def test_new_keys_keep_the_store_keys_of_committed_runs() -> None:
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import open_dict

    from ipcae.store import config_key, run_dir

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=["experiment=paper/mice_protein_classification", "model=ipcae", "seed=0"])
    assert "last_checkpoint" in cfg.callbacks and cfg.resume is False
    assert (run_dir(ROOT / "results" / "paper", cfg) / "results.json").is_file()
    key = config_key(cfg)
    with open_dict(cfg):
        cfg.resume = True
        cfg.callbacks.model_checkpoint.save_last = True
        del cfg.callbacks["last_checkpoint"]
    assert config_key(cfg) == key
    cfg.callbacks.model_checkpoint.save_top_k = 3  # a setting that is not pinned still counts
    assert config_key(cfg) != key


# --- never wrong: bad input --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model.lr=nan"], "model.lr=nan"),
        (["model.lr=-0.1"], "model.lr=-0.1"),
        (["model.lr=abc"], "model.lr='abc'"),
        (["model.weight_decay=-1"], "model.weight_decay=-1"),
        (["seed=-1"], "seed=-1"),
        (["seed=abc"], "seed='abc'"),
        (["seed=99999999999"], "seed=99999999999"),
        (["data.batch_size=0"], "data.batch_size=0"),
        (["data.batch_size=-16"], "data.batch_size=-16"),
        (["trainer.max_epochs=0"], "trainer.max_epochs=0"),
        (["trainer.max_epochs=-1"], "trainer.max_epochs=-1"),
        (["callbacks.temperature.start=0.001"], "callbacks.temperature.start=0.001 is below"),
        (["+foo=1"], "+foo adds a key that nothing reads"),
        (["+model.selector.embeding_dim=3"], "has no option 'embeding_dim'"),
        (["threads=0"], "threads=0"),
        (["resume=maybe"], "resume='maybe'"),
    ],
)
def test_bad_values_are_one_line_and_write_nothing(tmp_path: Path, overrides: list[str], message: str) -> None:
    store = tmp_path / "store"
    proc = run("train.py", f"hydra.run.dir={tmp_path / 'run'}", f"store_dir={store}", *FAST, *overrides)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    (line,) = error_lines(proc.stderr)
    assert message in line
    assert not (tmp_path / "run" / "results.json").exists() and not (tmp_path / "run" / "checkpoints").exists()
    assert not [p for p in store.rglob("*") if p.is_file()]


def test_group_appends_and_hydra_keys_are_not_refused(tmp_path: Path) -> None:
    from omegaconf import OmegaConf

    from ipcae.validation import check_added_keys

    cfg = OmegaConf.create({"model": {"selector": {"_target_": "ipcae.selectors.IndirectSelector"}}, "data": {}})
    check_added_keys(cfg, ["+model/metrics=f1_macro", "+hydra.job.env_set.X=1", "+data.options.impute=paper",
                           "+model.selector.noise=per_batch", "seed=1"])  # fmt: skip


@pytest.mark.parametrize("kind", ["text", "directory"])
def test_a_non_checkpoint_is_one_line_in_train_and_eval(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "notes.txt"
    if kind == "text":
        path.write_text("hello\n")
    else:
        path.mkdir()
    for script in ("train.py", "eval.py"):
        proc = run(script, f"ckpt_path={path}", f"hydra.run.dir={tmp_path / script}", *FAST_FOR[script])
        assert proc.returncode == 2, proc.stderr[-3000:]
        assert "Traceback" not in proc.stderr
        (line,) = error_lines(proc.stderr)
        assert str(path) in line


def test_unwritable_output_and_store_folders_are_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    cases = (
        ([f"hydra.run.dir={blocker / 'run'}"], "hydra.run.dir"),
        ([f"hydra.run.dir={tmp_path / 'run'}", f"store_dir={blocker / 'store'}"], "store_dir"),
    )
    for overrides, key in cases:
        proc = run("train.py", *overrides, *FAST)
        assert proc.returncode == 2, proc.stderr[-3000:]
        assert "Traceback" not in proc.stderr
        (line,) = error_lines(proc.stderr)
        assert key in line and "not a writable folder" in line


def test_eval_takes_the_dataset_from_the_checkpoint_and_refuses_another(tmp_path: Path) -> None:
    proc = run("train.py", f"hydra.run.dir={tmp_path / 'train'}", "trainer.max_epochs=1", *FAST)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ckpt = tmp_path / "train" / "checkpoints" / "last.ckpt"
    refused = {
        "data=mnist": "the checkpoint was trained on data=digits",
        "+data.options.impute=paper": "data.options.impute=paper but the checkpoint was trained with no impute",
    }
    for override, message in refused.items():
        proc = run("eval.py", f"ckpt_path={ckpt}", f"hydra.run.dir={tmp_path / 'refused'}", override)
        assert proc.returncode == 2, proc.stderr[-3000:]
        assert message in error_lines(proc.stderr)[0]
        assert not (tmp_path / "refused" / "results.json").exists()


# --- never wrong: data -------------------------------------------------------------------------


def test_nan_or_inf_in_a_split_is_refused_naming_it() -> None:
    from ipcae.data.splits import Splits
    from ipcae.errors import DataError

    x = torch.zeros(4, 3)
    bad = x.clone()
    bad[1, 2], bad[3, 0] = float("nan"), float("inf")
    y = torch.zeros(4, dtype=torch.int64)
    with pytest.raises(DataError, match="the val split has 2 NaN or infinite values in 2 rows"):
        Splits("toy", x, y, bad, y, x, y, ["a", "b", "c"], 1)


def test_nan_check_counts_across_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Wide matrices are checked a few rows at a time: every bad value and row is still counted."""
    import ipcae.data.splits as splits_module

    monkeypatch.setattr(splits_module, "_CHECK_BLOCK_ELEMENTS", 8)  # two rows of 4 per block
    x = torch.zeros(7, 4)
    x[0, 1] = x[0, 2] = x[3, 3] = x[6, 0] = float("nan")
    x[5, 1] = float("-inf")
    assert splits_module._non_finite(x) == (5, 4)
    assert splits_module._non_finite(torch.zeros(7, 4)) == (0, 0)


def test_local_files_are_verified_once_against_their_checksum(tmp_path: Path, real_data_dir: Path, monkeypatch) -> None:
    from ipcae.data import download as dl
    from ipcae.data.files import ensure_files
    from ipcae.errors import DataError

    monkeypatch.setenv("IPCAE_CACHE_DIR", str(tmp_path / "cache"))
    wrong = tmp_path / "data" / "mnist"
    wrong.mkdir(parents=True)
    for f in (real_data_dir / "fashion_mnist").glob("*.gz"):  # Fashion-MNIST under mnist/
        (wrong / f.name).symlink_to(f)
    with pytest.raises(DataError, match="failed verification") as caught:
        ensure_files("mnist", tmp_path / "data", download=False)
    assert str(wrong) in str(caught.value)
    for f in wrong.iterdir():
        f.unlink()
        (wrong / f.name).symlink_to(real_data_dir / "mnist" / f.name)
    calls: list[Path] = []
    original = dl.verify_file
    monkeypatch.setattr(dl, "verify_file", lambda path, **kw: (calls.append(path), original(path, **kw))[1])
    ensure_files("mnist", tmp_path / "data", download=False)
    assert len(calls) == 4
    ensure_files("mnist", tmp_path / "data", download=False)
    assert len(calls) == 4  # remembered by size and modification time
    truncated = tmp_path / "trunc" / "mnist"
    truncated.mkdir(parents=True)
    for f in (real_data_dir / "mnist").glob("*.gz"):
        (truncated / f.name).write_bytes(f.read_bytes()[: 1000 if "t10k-labels" in f.name else None])
    with pytest.raises(DataError, match="t10k-labels"):
        ensure_files("mnist", tmp_path / "trunc", download=False)


def test_temperature_start_below_end_is_refused_by_the_callback() -> None:
    from ipcae.callbacks import TemperatureAnnealing
    from ipcae.errors import ConfigError

    with pytest.raises(ConfigError, match=r"start=0\.001 is below"):
        TemperatureAnnealing(start=0.001, end=0.01)
    TemperatureAnnealing(start=0.01, end=0.01)  # a constant temperature is a valid choice


def test_a_signal_raises_in_the_block_and_is_found_behind_cleanup_errors() -> None:
    from ipcae.cli import find_interrupt
    from ipcae.signals import RunInterrupted, interruptible

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(RunInterrupted) as caught, interruptible():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler raises before this ends
    assert caught.value.exit_status == 143 and caught.value.name == "SIGTERM"
    assert signal.getsignal(signal.SIGTERM) is before
    # A signal during torch.save comes out as the zip writer's RuntimeError with it as context.
    try:
        try:
            raise RunInterrupted(signal.SIGINT)
        except RunInterrupted:
            raise RuntimeError("unexpected pos")  # noqa: B904 (as torch's __exit__ does)
    except RuntimeError as exc:
        found = find_interrupt(exc)
    assert found is not None and found.exit_status == 130
    assert find_interrupt(RuntimeError("no signal")) is None
