"""ipcae: embedded feature selection with Concrete Autoencoders and Indirectly Parameterized CAEs."""

__version__ = "0.1.0"

from ipcae.errors import IpcaeError

__all__ = ["IpcaeError", "__version__"]
