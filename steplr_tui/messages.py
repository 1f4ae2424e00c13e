"""Messages from the training worker to the UI, as small Textual messages.

The worker thread talks to the UI only by posting these; each carries the run it
came from, so a late event from a run already replaced is dropped.
"""

from __future__ import annotations

from textual.message import Message

from steplr_tui.events import Event


class TrainerEvent(Message):
    """One trainer event, from run number `run_id`."""

    def __init__(self, run_id: int, event: Event) -> None:
        super().__init__()
        self.run_id = run_id
        self.event = event


class DeviceProbed(Message):
    """Background warm-up finished: torch is imported and the auto device is known."""

    def __init__(self, description: str) -> None:
        super().__init__()
        self.description = description
