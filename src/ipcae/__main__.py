"""``python -m ipcae train|eval|report [arguments]``."""

from ipcae.commands import main

main()
