"""User-facing errors: raised for bad input, reported by the CLIs as a single line."""


class IpcaeError(Exception):
    """An error caused by the user's input or environment, with the fix in its message.

    The command-line entry points print ``str(error)`` on one line and exit non-zero instead of
    showing a traceback, so the message must name the offending value and what to do about it.
    """


class ConfigError(IpcaeError, ValueError):
    """A configuration value is out of range or unknown."""


class DataError(IpcaeError):
    """Data files are missing, corrupt or cannot be downloaded."""
