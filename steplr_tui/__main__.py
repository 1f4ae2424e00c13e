"""`python -m steplr_tui` runs the same command as `steplr-tui`."""

from steplr_tui.cli import entry

entry()
