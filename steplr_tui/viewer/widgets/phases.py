"""The phase table widget: one row per LR phase of the run on screen."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.widgets import DataTable

from steplr_tui.runfolder import EpochEnd
from steplr_tui.runfolder.schedule import format_lr
from steplr_tui.runfolder.text import format_duration
from steplr_tui.viewer.lr_phases import LrPhase, phases

# Changes only: the panes beside the table show the levels.
COLUMNS = ("lr", "epochs", "Δloss", "Δacc", "time")


def _change(value: float, better_when_lower: bool, fmt: str) -> Text:
    good = value < 0 if better_when_lower else value > 0
    style = "green" if good else "red" if value != 0 else ""
    return Text(" " + format(value, fmt), style=style, justify="right")


class PhaseTable(DataTable):
    """Each phase's lr, epochs, where it left loss and accuracy, the change, and time."""

    def __init__(self, **kwargs) -> None:
        # One space between columns instead of two: all five fit a 30-column sidebar.
        super().__init__(
            cursor_type="row", zebra_stripes=True, show_cursor=False, cell_padding=0, **kwargs
        )
        self.border_title = "Phases"
        self._phases: list[LrPhase] = []  # what the rows show, to replace only what changed

    def on_mount(self) -> None:
        for i, name in enumerate(COLUMNS):
            label = name if i == 0 else " " + name
            self.add_column(Text(label, justify="left" if i < 2 else "right"), key=name)
        # The newest phase stays in view as rows come, until the user scrolls up.
        self.anchor()

    def show(self, epochs: Sequence[EpochEnd]) -> None:
        """Bring the rows up to date. Only the rows that changed are replaced (while
        training, the last phase and any new one), so a run of a thousand phases
        costs a redraw what a short one does."""
        rows = phases(epochs)
        same = 0
        for old, new in zip(self._phases, rows, strict=False):
            if old != new:
                break
            same += 1
        if same == len(rows) == len(self._phases):
            return
        for i in range(len(self._phases) - 1, same - 1, -1):
            self.remove_row(str(i))
        for i, phase in enumerate(rows[same:], start=same):
            self.add_row(
                format_lr(phase.lr),
                Text(" " + phase.epochs),
                _change(phase.loss_change, True, "+.4f"),
                _change(phase.acc_change, False, "+.2f"),
                Text(" " + format_duration(phase.seconds), justify="right"),
                key=str(i),
            )
        self._phases = rows
