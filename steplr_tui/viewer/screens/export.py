"""The export screen: where the CSV went, and the PyTorch snippet to paste."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, Static, TextArea


class ExportScreen(ModalScreen[None]):
    """Shows an export's result; `c` copies the snippet (OSC 52 reaches over SSH)."""

    CSS_PATH = "dialogs.tcss"  # read as it first opens (the dashboard has no use for it)

    BINDINGS = [
        Binding("escape", "close", "Close"),
        Binding("c", "copy", "Copy snippet"),
    ]

    def __init__(self, csv_path: str, snippet: str) -> None:
        super().__init__()
        self.csv_path = csv_path
        self.snippet = snippet

    def compose(self) -> ComposeResult:
        with Vertical(id="export-box"):
            yield Static(f"Metrics written to {self.csv_path}", id="export-title", markup=False)
            yield Static("PyTorch lines that reproduce this run's schedule:", id="export-hint")
            yield TextArea(
                self.snippet, language=None, read_only=True, show_line_numbers=False, id="snippet"
            )
        yield Footer()

    def action_copy(self) -> None:
        self.app.copy_to_clipboard(self.snippet)
        self.notify(
            "Snippet copied to the clipboard (where the terminal allows OSC 52).", markup=False
        )

    def action_close(self) -> None:
        self.dismiss(None)
