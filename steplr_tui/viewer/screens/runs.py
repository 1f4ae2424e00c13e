"""The runs screen: recorded runs in a table to sort, overlay, resume, attach to or branch
(each branch right under its parent).

The table re-reads the runs folder every `REFRESH_S` while it is open, so a
running run's epochs and status stay current.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, Static

from steplr_tui.runfolder.params import TrainConfig
from steplr_tui.runfolder.reader import RunInfo, list_runs
from steplr_tui.runfolder.resume import resume_problem
from steplr_tui.runfolder.runs_table import (
    SORT_KEYS,
    SUMMARY_COLUMNS,
    nest_branches,
    nested_name,
    short_name,
    sort_runs,
    summary_row,
)
from steplr_tui.viewer.compare import MAX_OVERLAYS
from steplr_tui.viewer.widgets.keys import OrderedKeys
from steplr_tui.viewer.widgets.rows import plain_cells, update_rows

MARK = "◆"
REFRESH_S = 1.0


@dataclass
class RunsChoice:
    """What the user chose: runs to overlay, and possibly one to resume or attach to."""

    overlays: list[RunInfo] = field(default_factory=list)
    resume: Path | None = None
    attach: Path | None = None


class RunsTable(OrderedKeys, DataTable):
    """The table, taking keys in the order they arrive (down then space marks the new row)."""


class RunsScreen(ModalScreen[RunsChoice | None]):
    """Recorded runs, newest first. Dismisses with a RunsChoice, or None when cancelled."""

    CSS_PATH = "dialogs.tcss"  # read as it first opens (the dashboard has no use for it)

    # Not priority bindings: they run in the order keys arrive, after the table's own.
    BINDINGS = [
        Binding("escape", "close", "Close"),
        Binding("enter", "resume", "Resume"),
        Binding("a", "attach", "Attach"),
        Binding("b", "branch", "Branch"),
        Binding("space", "toggle_overlay", "Overlay"),
        Binding("s", "sort", "Sort"),
        Binding("c", "clear_overlays", "Clear"),
    ]

    def __init__(
        self, runs_dir: Path, overlaid: set[str] | None = None, base: TrainConfig | None = None
    ) -> None:
        super().__init__()
        self.runs_dir = runs_dir
        self.base = base  # this machine's device, threads and data folder, for a branch
        self.runs: list[RunInfo] = []
        self.overlaid: set[str] = set(overlaid or ())  # run folders, as str
        self.sort_key = SORT_KEYS[0]
        self._shown: dict[str, tuple[str, ...]] = {}
        self._depth: dict[str, int] = {}  # a branch's depth under its parent

    def compose(self) -> ComposeResult:
        with Vertical(id="runs-box"):
            yield Static(f"Runs in {self.runs_dir}", id="runs-title", markup=False)
            yield RunsTable(id="runs-table", cursor_type="row", zebra_stripes=True)
            yield Static("reading…", id="runs-hint", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_column(MARK, key="mark")
        for name in SUMMARY_COLUMNS:
            table.add_column(name, key=name)
        self.load_runs()
        self.set_interval(REFRESH_S, self.load_runs)

    @work(thread=True, exclusive=True, group="runs")
    def load_runs(self) -> None:
        # Reading many small JSON files is I/O; keep it off the UI thread.
        runs = list_runs(self.runs_dir)
        self.app.call_from_thread(self._update, runs)

    def _row(self, run: RunInfo) -> tuple[str, ...]:
        name, *rest = summary_row(run)
        depth = self._depth.get(str(run.path), 0)
        return (
            MARK if str(run.path) in self.overlaid else "",
            *plain_cells((nested_name(short_name(name), depth), *rest)),
        )

    def _ordered(self, runs: list[RunInfo]) -> list[RunInfo]:
        """Sorted by the chosen key, each branch right under its parent."""
        nested = nest_branches(sort_runs(runs, self.sort_key))
        self._depth = {str(run.path): depth for run, depth in nested}
        return [run for run, _ in nested]

    def _update(self, runs: list[RunInfo]) -> None:
        """Fresh runs from disk: update cells in place when the rows are the same runs."""
        ordered = self._ordered(runs)
        if [str(r.path) for r in ordered] != [str(r.path) for r in self.runs]:
            self._show(ordered)
            return
        self.runs = ordered
        rows = {str(run.path): self._row(run) for run in ordered}
        update_rows(self.query_one(DataTable), self._shown, rows)

    def _show(self, runs: list[RunInfo], keep_cursor: str | None = None) -> None:
        table = self.query_one(DataTable)
        if keep_cursor is None and self.runs and 0 <= table.cursor_row < len(self.runs):
            keep_cursor = str(self.runs[table.cursor_row].path)
        self.runs = self._ordered(runs)
        table.clear()
        self._shown = {}
        for run in self.runs:
            row = self._row(run)
            table.add_row(*row, key=str(run.path))
            self._shown[str(run.path)] = row
        keys = [str(r.path) for r in self.runs]
        if keep_cursor in keys:
            table.move_cursor(row=keys.index(keep_cursor))
        self._hint()
        self.call_after_refresh(self._hint)  # once laid out: does the table fit?
        table.focus()

    def _hint(self) -> None:
        if not self.runs:
            text = "no runs recorded yet"
        else:
            table = self.query_one(DataTable)
            wide = table.virtual_size.width > table.size.width > 0
            more = " · ← → more columns" if wide else ""
            text = (
                f"sorted by {self.sort_key} (s) · space overlays ({len(self.overlaid)}/"
                f"{MAX_OVERLAYS}) · enter resumes · a attaches · b branches{more}"
            )
        self.query_one("#runs-hint", Static).update(text)

    def on_resize(self) -> None:
        self.call_after_refresh(self._hint)

    def _selected(self) -> RunInfo | None:
        table = self.query_one(DataTable)
        if not self.runs or not 0 <= table.cursor_row < len(self.runs):
            return None
        return self.runs[table.cursor_row]

    def action_sort(self) -> None:
        self.sort_key = SORT_KEYS[(SORT_KEYS.index(self.sort_key) + 1) % len(SORT_KEYS)]
        self._show(self.runs)

    def action_toggle_overlay(self) -> None:
        run = self._selected()
        if run is None:
            return
        key = str(run.path)
        if key in self.overlaid:
            self.overlaid.discard(key)
        elif not run.metrics:
            self.notify(
                f"{run.name} has no finished epoch to draw", severity="warning", markup=False
            )
            return
        elif len(self.overlaid) >= MAX_OVERLAYS:
            self.notify(
                f"At most {MAX_OVERLAYS} overlays: unmark one first.",
                severity="warning",
                markup=False,
            )
            return
        else:
            self.overlaid.add(key)
        table = self.query_one(DataTable)
        table.update_cell(key, "mark", MARK if key in self.overlaid else "")
        self._shown[key] = self._row(run)
        self._hint()

    def action_clear_overlays(self) -> None:
        self.overlaid.clear()
        self._show(self.runs)

    def _choice(self, resume: Path | None = None, attach: Path | None = None) -> RunsChoice:
        chosen = [run for run in self.runs if str(run.path) in self.overlaid]
        return RunsChoice(overlays=chosen, resume=resume, attach=attach)

    def action_close(self) -> None:
        self.dismiss(self._choice())

    def action_resume(self) -> None:
        run = self._selected()
        if run is None:
            return
        problem = resume_problem(run)
        if problem:
            self.notify(problem, title="Cannot resume", severity="warning", markup=False)
            return
        self.dismiss(self._choice(resume=run.path))

    def action_attach(self) -> None:
        run = self._selected()
        if run is not None:
            self.dismiss(self._choice(attach=run.path))

    def action_branch(self) -> None:
        """A new run from the selected run's checkpoint, with an edit (the branch form)."""
        run = self._selected()
        if run is None:
            return
        from steplr_tui.viewer.screens.branch_form import BranchScreen

        def started(folder: Path | None) -> None:
            if folder is not None:
                self.notify(
                    f"{folder.name} trains in its own process, under {run.name} here "
                    "(a attaches to it).",
                    title="Branch started",
                    timeout=8,
                    markup=False,
                )
                self.load_runs()

        self.app.push_screen(BranchScreen(run.path, self.runs_dir, self.base), callback=started)

    @on(DataTable.RowSelected)
    def _on_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_resume()
