"""The command line on top of both sides: `steplr-tui` and `python -m steplr_tui`."""

from steplr_tui.cli.main import entry, main

__all__ = ["entry", "main"]
