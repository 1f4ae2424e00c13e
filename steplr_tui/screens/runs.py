"""The runs screen: recorded runs in a table; Enter resumes the selected one."""

from __future__ import annotations

from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, Static

from steplr_tui.jobs import resume_problem
from steplr_tui.runs import SUMMARY_COLUMNS, RunInfo, list_runs, summary_row


class RunsScreen(ModalScreen[Path | None]):
    """Recorded runs, newest first; dismisses with the folder of a run to resume."""

    BINDINGS = [
        Binding("escape", "dismiss_none", "Close"),
        Binding("enter", "resume", "Resume", priority=True),
    ]

    def __init__(self, runs_dir: Path) -> None:
        super().__init__()
        self.runs_dir = runs_dir
        self.runs: list[RunInfo] = []

    def compose(self) -> ComposeResult:
        with Vertical(id="runs-box"):
            yield Static(f"Runs in {self.runs_dir}", id="runs-title")
            yield DataTable(id="runs-table", cursor_type="row", zebra_stripes=True)
            yield Static("reading…", id="runs-hint")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns(*SUMMARY_COLUMNS)
        self.load_runs()

    @work(thread=True, exclusive=True, group="runs")
    def load_runs(self) -> None:
        # Reading many small JSON files is I/O; keep it off the UI thread.
        runs = list_runs(self.runs_dir)
        self.app.call_from_thread(self._show, runs)

    def _show(self, runs: list[RunInfo]) -> None:
        self.runs = runs
        table = self.query_one(DataTable)
        table.clear()
        for run in runs:
            table.add_row(*summary_row(run), key=str(run.path))
        hint = "enter resumes a stopped or interrupted run · escape closes"
        self.query_one("#runs-hint", Static).update(hint if runs else "no runs recorded yet")
        table.focus()

    def action_dismiss_none(self) -> None:
        self.dismiss(None)

    def action_resume(self) -> None:
        table = self.query_one(DataTable)
        if not self.runs or table.cursor_row < 0:
            return
        run = self.runs[table.cursor_row]
        problem = resume_problem(run)
        if problem:
            self.notify(problem, title="Cannot resume", severity="warning")
            return
        self.dismiss(run.path)

    @on(DataTable.RowSelected)
    def _on_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_resume()
