"""Move a store's runs to the keys the current configuration gives them.

    python scripts/rekey_store.py results/paper [--dry-run]

A store finds a finished run by a hash of its configuration, so a change to the config tree (a new
key, a moved default) gives every cell a new key and a re-launched sweep would run it again. For
each stored run this script recomposes the current config of its cell (the paper preset of its
dataset and task, its model, seed and swept hyper-parameter, and any recorded overrides), checks
that every setting the run recorded has the same value in it, and only then moves the run to its
new key. A run whose settings differ is listed and left where it is: it is no longer the cell the
current config describes.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
os.environ.setdefault("IPCAE_ROOT", str(ROOT))

from hydra import compose, initialize_config_dir  # noqa: E402
from omegaconf import OmegaConf, open_dict  # noqa: E402

from ipcae.data import dataset_info  # noqa: E402
from ipcae.paper import METHODS  # noqa: E402
from ipcae.store import (  # noqa: E402
    EQUIVALENT_VALUES,
    IGNORED_KEYS,
    NEUTRAL_OPTIONS,
    PINNED_OPTIONS,
    RESULTS_FILE,
    run_dir,
)

# Keys the current config has that runs recorded before they existed, with the value that
# reproduces what those runs did.
ADDED = {
    "model.optimizer._target_": "torch.optim.Adam",
    "model.optimizer._partial_": True,
    "data.module": None,
    "model._target_": "ipcae.module.FeatureSelectionModule",  # rankers build no module of their own
    "model.selector.max_noise_elements": None,  # the default budget, far above the paper's sizes
    "model.selector.max_map_gib": 2.0,  # a guard that refuses or allows, never changes a run
    "callbacks.last_checkpoint._target_": "ipcae.checkpoints.LastCheckpoint",  # for resuming only
}


def neutral(key: str, value: object) -> bool:
    """A key the store leaves out of the hash at this value (itself or under a neutral parent)."""
    for dotted, values in NEUTRAL_OPTIONS.items():
        if (key == dotted or key.startswith(dotted + ".")) and (values is None or value in values):
            return True
    return False


def machine_path(value: object) -> bool:
    """A recorded value made portable (``<output_dir>/checkpoints``): where, not what, a run computed."""
    return isinstance(value, str) and value.startswith("<") and ">" in value


def flat(value: object, prefix: str = "") -> dict[str, object]:
    if isinstance(value, dict):
        out: dict[str, object] = {}
        for k, v in value.items():
            out.update(flat(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: value}


def cell_overrides(results: dict) -> list[str]:
    config, model = results["config"], results["model"]
    overrides = [
        f"experiment=paper/{results['dataset']}_{results['task']}",
        f"model={model}",
        f"seed={results['seed']}",
    ]
    tuned = METHODS[model].tuned if model in METHODS else None
    if tuned:
        value = flat(config).get(tuned)
        overrides.append(f"{tuned}={value}")
    if model == "lassonet":
        overrides.append(f"model.options.lambda_start={config['model']['options']['lambda_start']}")
    return overrides + [o for o in results.get("overrides") or [] if o.split("=")[0] not in {"seed"}]


def differences(recorded: dict, current: dict, dataset: str) -> list[str]:
    """Settings whose recorded value the current config does not give."""
    info = dataset_info(dataset)
    defaults = {"data.k": info.k, "data.batch_size": info.batch_size, "model.k": info.k}
    rec = {k: v for k, v in flat(recorded).items() if k.split(".")[0] not in IGNORED_KEYS}
    cur = {k: v for k, v in flat(current).items() if k.split(".")[0] not in IGNORED_KEYS}
    cur = {k: (defaults[k] if v is None and k in defaults else v) for k, v in cur.items()}
    # Values that replaced recorded ones without changing the run, and new keys at neutral values.
    cur = {k: EQUIVALENT_VALUES[k].get(v, v) if k in EQUIVALENT_VALUES else v for k, v in cur.items()}
    rec = {k: EQUIVALENT_VALUES[k].get(v, v) if k in EQUIVALENT_VALUES else v for k, v in rec.items()}
    cur = {k: v for k, v in cur.items() if k in rec or not neutral(k, v)}
    # Pinned options change how a run is kept, not what it computes (ipcae.store).
    rec = {k: v for k, v in rec.items() if not machine_path(v) and k not in PINNED_OPTIONS}
    cur = {k: v for k, v in cur.items() if k not in PINNED_OPTIONS}
    cur = {k: v for k, v in cur.items() if k in rec or not (k.endswith(("dirpath", "data_dir", "default_root_dir")))}
    diffs = [f"{k}: recorded {rec[k]!r}, now {cur.get(k, '<absent>')!r}" for k in rec if rec[k] != cur.get(k)]
    diffs += [f"{k}: new, {cur[k]!r}" for k in cur if k not in rec and ADDED.get(k, object()) != cur[k]]
    return diffs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("store", type=Path)
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args()
    moved = kept = unchanged = 0
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        for path in sorted(args.store.rglob(RESULTS_FILE)):
            results = json.loads(path.read_text())
            cfg = compose("train", overrides=cell_overrides(results))
            with open_dict(cfg):
                cfg.paths.output_dir = "."
            current = OmegaConf.to_container(cfg, resolve=True)
            diffs = differences(results["config"], current, results["dataset"])
            if diffs:
                kept += 1
                print(f"kept {path.parent}: {'; '.join(diffs[:4])}")
                continue
            target = run_dir(args.store, cfg)
            if target == path.parent:
                unchanged += 1
                continue
            if target.exists():
                kept += 1
                print(f"kept {path.parent}: {target} exists already")
                continue
            moved += 1
            if not args.dry_run:
                target.parent.mkdir(parents=True, exist_ok=True)
                path.parent.rename(target)
    verb = "would move" if args.dry_run else "moved"
    print(f"{verb} {moved} runs; {unchanged} already at their key; {kept} kept in place")


if __name__ == "__main__":
    main()
