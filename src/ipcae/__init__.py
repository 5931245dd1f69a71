"""ipcae: embedded feature selection with Concrete Autoencoders and Indirectly Parameterized CAEs."""

__version__ = "0.1.0"

from ipcae.errors import IpcaeError


def _register_resolvers() -> None:
    """``${ipcae.run_id:}`` in the output folders (conf/hydra/default.yaml): ``<pid>-<4 random hex>``.

    Registered on import, so that every process that composes or resolves the config (a sweep's
    worker processes too) knows it. Cached, so one process resolves it to one value; random bits
    come from ``secrets``, which leaves the seeded generators untouched.
    """
    import os
    import secrets

    from omegaconf import OmegaConf

    if not OmegaConf.has_resolver("ipcae.run_id"):
        OmegaConf.register_new_resolver("ipcae.run_id", lambda: f"{os.getpid()}-{secrets.token_hex(2)}", use_cache=True)


_register_resolvers()

__all__ = ["IpcaeError", "__version__"]
