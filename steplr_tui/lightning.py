"""`steplr_tui.lightning.SteplrCallback`: PyTorch Lightning runs in steplr-tui (an extra:
`pip install 'steplr-tui[lightning]'`). The callback lives with the run side, in
`steplr_tui/run/lightning.py`."""

from steplr_tui.run.lightning import SteplrCallback

__all__ = ["SteplrCallback"]
