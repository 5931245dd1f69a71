"""Logger factories with behaviour the plain Lightning classes lack."""

from __future__ import annotations

import netrc
import os
from typing import Any

from lightning.pytorch.loggers import WandbLogger


def wandb_has_credentials() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        auth = netrc.netrc().authenticators("api.wandb.ai")
    except (FileNotFoundError, netrc.NetrcParseError):
        return False
    return auth is not None


def wandb_logger(**kwargs: Any) -> WandbLogger:
    """A WandbLogger that never prompts: offline unless credentials exist or WANDB_MODE says otherwise.

    ``WANDB_MODE=offline`` or ``disabled`` is honoured; without ``WANDB_API_KEY`` or a netrc entry the
    run is written offline (``wandb sync`` uploads it later) instead of asking for a key on stdin.
    """
    mode = os.environ.get("WANDB_MODE")
    if mode is None and not wandb_has_credentials():
        kwargs["offline"] = True
    os.environ.setdefault("WANDB_SILENT", "true")
    return WandbLogger(**kwargs)
