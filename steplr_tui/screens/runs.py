"""The runs screen: recorded runs in a table to sort, pick for overlays, or resume."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, Static

from steplr_tui.compare import MAX_OVERLAYS
from steplr_tui.jobs import resume_problem
from steplr_tui.runs import (
    SORT_KEYS,
    SUMMARY_COLUMNS,
    RunInfo,
    list_runs,
    short_name,
    sort_runs,
    summary_row,
)

MARK = "◆"


@dataclass
class RunsChoice:
    """What the user chose: runs to overlay, and possibly one to resume."""

    overlays: list[RunInfo] = field(default_factory=list)
    resume: Path | None = None


class RunsScreen(ModalScreen[RunsChoice | None]):
    """Recorded runs, newest first. Dismisses with a RunsChoice, or None when cancelled."""

    BINDINGS = [
        Binding("escape", "close", "Close"),
        Binding("enter", "resume", "Resume", priority=True),
        Binding("space", "toggle_overlay", "Overlay", priority=True),
        Binding("s", "sort", "Sort"),
        Binding("c", "clear_overlays", "Clear"),
    ]

    def __init__(self, runs_dir: Path, overlaid: set[str] | None = None) -> None:
        super().__init__()
        self.runs_dir = runs_dir
        self.runs: list[RunInfo] = []
        self.overlaid: set[str] = set(overlaid or ())  # run folders, as str
        self.sort_key = SORT_KEYS[0]

    def compose(self) -> ComposeResult:
        with Vertical(id="runs-box"):
            yield Static(f"Runs in {self.runs_dir}", id="runs-title")
            yield DataTable(id="runs-table", cursor_type="row", zebra_stripes=True)
            yield Static("reading…", id="runs-hint")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_column(MARK, key="mark")
        for name in SUMMARY_COLUMNS:
            table.add_column(name, key=name)
        self.load_runs()

    @work(thread=True, exclusive=True, group="runs")
    def load_runs(self) -> None:
        # Reading many small JSON files is I/O; keep it off the UI thread.
        runs = list_runs(self.runs_dir)
        self.app.call_from_thread(self._show, runs)

    def _show(self, runs: list[RunInfo], keep_cursor: str | None = None) -> None:
        self.runs = sort_runs(runs, self.sort_key)
        table = self.query_one(DataTable)
        table.clear()
        for run in self.runs:
            mark = MARK if str(run.path) in self.overlaid else ""
            name, *rest = summary_row(run)
            table.add_row(mark, short_name(name), *rest, key=str(run.path))
        if keep_cursor is not None:
            table.move_cursor(row=table.get_row_index(keep_cursor))
        self._hint()
        table.focus()

    def _hint(self) -> None:
        if not self.runs:
            text = "no runs recorded yet"
        else:
            text = (
                f"sorted by {self.sort_key} (s) · space overlays ({len(self.overlaid)}/"
                f"{MAX_OVERLAYS}) · enter resumes · escape closes"
            )
        self.query_one("#runs-hint", Static).update(text)

    def _selected(self) -> RunInfo | None:
        table = self.query_one(DataTable)
        if not self.runs or not 0 <= table.cursor_row < len(self.runs):
            return None
        return self.runs[table.cursor_row]

    def action_sort(self) -> None:
        self.sort_key = SORT_KEYS[(SORT_KEYS.index(self.sort_key) + 1) % len(SORT_KEYS)]
        run = self._selected()
        self._show(self.runs, keep_cursor=str(run.path) if run else None)

    def action_toggle_overlay(self) -> None:
        run = self._selected()
        if run is None:
            return
        key = str(run.path)
        if key in self.overlaid:
            self.overlaid.discard(key)
        elif not run.metrics:
            self.notify(f"{run.name} has no finished epoch to draw", severity="warning")
            return
        elif len(self.overlaid) >= MAX_OVERLAYS:
            self.notify(f"At most {MAX_OVERLAYS} overlays: unmark one first.", severity="warning")
            return
        else:
            self.overlaid.add(key)
        table = self.query_one(DataTable)
        table.update_cell(key, "mark", MARK if key in self.overlaid else "")
        self._hint()

    def action_clear_overlays(self) -> None:
        self.overlaid.clear()
        run = self._selected()
        self._show(self.runs, keep_cursor=str(run.path) if run else None)

    def _choice(self, resume: Path | None = None) -> RunsChoice:
        chosen = [run for run in self.runs if str(run.path) in self.overlaid]
        return RunsChoice(overlays=chosen, resume=resume)

    def action_close(self) -> None:
        self.dismiss(self._choice())

    def action_resume(self) -> None:
        run = self._selected()
        if run is None:
            return
        problem = resume_problem(run)
        if problem:
            self.notify(problem, title="Cannot resume", severity="warning")
            return
        self.dismiss(self._choice(resume=run.path))

    @on(DataTable.RowSelected)
    def _on_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_resume()
