"""The sweep view: one row per trial, live, sortable, the best marked; every trial's
accuracy and loss curves overlaid; where the good region is. Enter attaches the
dashboard to a trial (to watch and steer it), x stops one.

The screen composes and routes: its source (a watcher thread, or a test's fixed
snapshot) brings `SweepUpdate`s; `sweep_view` says what to draw; the panes draw.
Below 120 columns the three panes share one place (`p` cycles them).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from steplr_tui.runfolder import (
    CONTROL_FILE,
    StopRequest,
    append_line,
    encode_request,
    new_request_id,
    sender_name,
)
from steplr_tui.study.spec import SweepSpec
from steplr_tui.study.table import COLUMNS, SORTS, sort_rows, sweep_parallel, sweep_state
from steplr_tui.viewer import sweep_view as view
from steplr_tui.viewer.sweep_source import SweepSnapshot, SweepSource, SweepUpdate
from steplr_tui.viewer.widgets.keys import OrderedKeys
from steplr_tui.viewer.widgets.rows import plain_cells, update_rows
from steplr_tui.viewer.widgets.sweep_plots import (
    CurvesPlot,
    RegionPlot,
    curves_title,
    region_subtitle,
    region_title,
)

PANES = ("acc-curves", "loss-curves", "region")
WIDE = 120
SourceFactory = Callable[[Path, SweepSpec, Callable[..., Any]], Any]


@dataclass
class SweepChoice:
    """What the user chose on leaving: a trial's run folder to attach the dashboard to."""

    attach: Path | None = None
    trial: int | None = None  # the trial it was, for the cursor when the view reopens


class TrialsTable(OrderedKeys, DataTable):
    """The trials, taking keys in the order they arrive."""


class SweepScreen(Screen[SweepChoice | None]):
    """A sweep's trials and curves (see the module docstring)."""

    CSS_PATH = "sweep.tcss"  # read as it first opens (the dashboard has no use for it)

    BINDINGS = [
        Binding("escape", "close", "Back"),
        Binding("enter", "attach", "Attach"),
        Binding("x", "stop_trial", "Stop trial"),
        Binding("s", "sort", "Sort"),
        Binding("a", "axes", "Axes"),
        Binding("p", "next_pane", "Pane"),
        Binding("n", "new_sweep", "New sweep"),
    ]

    def __init__(
        self,
        folder: Path,
        spec: SweepSpec,
        source: SourceFactory = SweepSource,
        select: int | None = None,
    ) -> None:
        super().__init__()
        self.folder, self.spec = folder, spec
        self.select = select  # the trial to put the cursor on when its row appears
        self._source_factory = source
        self.source: Any = None
        self.snapshot: SweepSnapshot | None = None
        self.sort_key = SORTS[0]
        self.axes = 0
        self.pane = 0
        self._shown: dict[str, tuple[str, ...]] = {}
        self._order: list[int] = []

    def compose(self) -> ComposeResult:
        yield Static(f"Sweep {self.spec.name}: reading its study…", id="sweep-head", markup=False)
        yield TrialsTable(id="trials", cursor_type="row", zebra_stripes=True)
        with Horizontal(id="sweep-plots"):
            yield CurvesPlot(id="acc-curves")
            yield CurvesPlot(id="loss-curves")
            yield RegionPlot(id="region")
        yield Static("", id="sweep-hint", markup=False)
        yield Footer(show_command_palette=False)

    def on_mount(self) -> None:
        table = self.query_one(TrialsTable)
        for name in COLUMNS:
            table.add_column(name, key=name or "mark")
        self.query_one("#acc-curves", CurvesPlot).border_title = curves_title("Test accuracy")
        self.query_one("#loss-curves", CurvesPlot).border_title = curves_title("Training loss")
        self._layout(self.app.size.width)
        self.source = self._source_factory(self.folder, self.spec, self.post_message)
        self.source.start(self.run_worker)
        table.focus()

    def on_unmount(self) -> None:
        if self.source is not None:
            self.source.close()

    def on_resize(self) -> None:
        self._layout(self.app.size.width)

    def _layout(self, width: int) -> None:
        narrow = width < WIDE
        if narrow != self.has_class("-narrow"):
            self.set_class(narrow, "-narrow")
            self.refresh_bindings()
        for i, name in enumerate(PANES):
            self.query_one(f"#{name}").set_class(narrow and i != self.pane, "-hidden")

    # ---- updates ------------------------------------------------------------------

    @on(SweepUpdate)
    def _on_update(self, message: SweepUpdate) -> None:
        self.show(message.snapshot)

    def show(self, snapshot: SweepSnapshot) -> None:
        """Draw a snapshot: the table in place, the panes, the head and hint lines."""
        self.snapshot = snapshot
        self.query_one("#sweep-head", Static).update(view.header_text(snapshot))
        self._table(snapshot)
        self._panes(snapshot)
        self._hint()

    def _table(self, snapshot: SweepSnapshot) -> None:
        table = self.query_one(TrialsTable)
        rows = sort_rows(snapshot.rows, self.sort_key)
        cells = dict(
            zip(
                (str(r.number) for r in rows),
                map(plain_cells, view.rows_cells(snapshot, rows)),
                strict=True,
            )
        )
        order = [r.number for r in rows]
        if order != self._order:  # new trials, or another order: the rows anew
            keep = self._selected_number()
            table.clear()
            for key, row in cells.items():
                table.add_row(*row, key=key)
            self._order, self._shown = order, dict(cells)
            keep = keep if keep is not None else self.select
            if keep in order:
                table.move_cursor(row=order.index(keep))
            return
        update_rows(table, self._shown, cells)

    def _panes(self, snapshot: SweepSnapshot) -> None:
        best = view.best_number(snapshot.rows)
        span = view.epochs_span(snapshot)
        acc = self.query_one("#acc-curves", CurvesPlot)
        acc.border_subtitle = view.accuracy_subtitle(snapshot)
        acc.show(view.accuracy_curves(snapshot), best, span, True)
        loss = self.query_one("#loss-curves", CurvesPlot)
        loss.border_subtitle = view.loss_subtitle(snapshot)
        loss.show(view.loss_curves(snapshot), best, span, False)
        pairs = view.axis_pairs(snapshot)
        region = self.query_one("#region", RegionPlot)
        if not pairs:
            region.border_title = "Accuracy by parameters"
            return
        x, y = pairs[self.axes % len(pairs)]
        region.border_title = region_title(x, y)
        region.border_subtitle = region_subtitle(len(pairs) > 1)
        region.show(view.region_points(snapshot, x, y), best, x, y)

    def _hint(self) -> None:
        narrow = " · p pane" if self.has_class("-narrow") else ""
        self.query_one("#sweep-hint", Static).update(
            f"sorted by {self.sort_key} (s) · enter attaches to a trial · x stops it{narrow}"
        )

    def _selected_number(self) -> int | None:
        table = self.query_one(TrialsTable)
        if not self._order or not 0 <= table.cursor_row < len(self._order):
            return None
        return self._order[table.cursor_row]

    def _selected(self):
        number = self._selected_number()
        if self.snapshot is None or number is None:
            return None
        return next((r for r in self.snapshot.rows if r.number == number), None)

    # ---- keys ---------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        """`p` only where the panes take turns (below 120 columns)."""
        return self.has_class("-narrow") if action == "next_pane" else True

    def action_close(self) -> None:
        self.dismiss(None)

    def action_sort(self) -> None:
        self.sort_key = SORTS[(SORTS.index(self.sort_key) + 1) % len(SORTS)]
        if self.snapshot is not None:
            self.show(self.snapshot)

    def action_axes(self) -> None:
        self.axes += 1
        if self.snapshot is not None:
            self._panes(self.snapshot)

    def action_next_pane(self) -> None:
        self.pane = (self.pane + 1) % len(PANES)
        self._layout(self.app.size.width)

    def _local_folder(self, row) -> Path | None:
        if row is None:
            return None
        folder = Path(row.run_folder) if row.run_folder else None
        if folder is None or not folder.is_dir():
            where = f"on {row.host}" if row.host else "elsewhere"
            self.notify(f"Trial {row.number} trains {where}: attach to it there.", markup=False)
            return None
        return folder

    def action_attach(self) -> None:
        row = self._selected()
        folder = self._local_folder(row)
        if folder is not None:
            self.dismiss(SweepChoice(attach=folder, trial=row.number))

    def action_stop_trial(self) -> None:
        row = self._selected()
        folder = self._local_folder(row)
        if folder is None or self.snapshot is None:
            return
        if view.shown_status(self.snapshot, row) != "RUNNING":
            self.notify(f"Trial {row.number} is not running.", markup=False)
            return
        request = StopRequest(
            new_request_id(), sender_name("viewer"), "stopped from the sweep view"
        )
        try:
            append_line(folder / CONTROL_FILE, encode_request(request))
        except OSError as exc:
            self.notify(f"Could not stop trial {row.number}: {exc}", severity="error", markup=False)
            return
        self.notify(
            f"Trial {row.number} stops at its next batch; the sweep counts it as pruned.",
            markup=False,
        )

    def action_new_sweep(self) -> None:
        from steplr_tui.viewer.screens.sweep_form import NewSweepScreen

        def started(result: tuple[Path, SweepSpec] | None) -> None:
            if result is not None:
                self.switch_to(*result)

        dashboard = self.app.screen_stack[0]
        state = self.snapshot.state if self.snapshot is not None else sweep_state(self.folder)
        form = NewSweepScreen(dashboard, like=self.spec, parallel=sweep_parallel(state))
        self.app.push_screen(form, callback=started)

    def switch_to(self, folder: Path, spec: SweepSpec) -> None:
        """Show another sweep."""
        if self.source is not None:
            self.source.close()
        self.folder, self.spec, self.snapshot = folder, spec, None
        self._order, self._shown = [], {}
        with contextlib.suppress(Exception):
            self.query_one(TrialsTable).clear()
        self.query_one("#sweep-head", Static).update(f"Sweep {spec.name}: reading its study…")
        self.source = self._source_factory(folder, spec, self.post_message)
        self.source.start(self.run_worker)

    @on(DataTable.RowSelected)
    def _on_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_attach()
