"""The dashboard's actions on views, overlays, export and the runs table (a mixin of the
screen, which composes and routes; these only ask the controller and the widgets)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from textual.binding import Binding

from steplr_tui.runfolder.job import Job
from steplr_tui.runfolder.params import FieldError, TrainConfig
from steplr_tui.runfolder.reader import RunNotFound, read_run, resolve_runs_dir
from steplr_tui.runfolder.resume import config_from_record, read_branch, resume_problem
from steplr_tui.runfolder.runs_table import short_name
from steplr_tui.viewer.compare import MAX_OVERLAYS, Overlay
from steplr_tui.viewer.starter import StartError
from steplr_tui.viewer.widgets.keys import after_keys
from steplr_tui.viewer.widgets.params import ParamPanel
from steplr_tui.viewer.widgets.plots import SMOOTHING

if TYPE_CHECKING:  # pragma: no cover
    from steplr_tui.viewer.screens.dashboard import DashboardScreen as _Base
    from steplr_tui.viewer.screens.runs import RunsChoice
else:
    _Base = object


KEYS = [
    Binding("ctrl+r", "start", "Start", priority=True),
    Binding("ctrl+n", "detach", "Detach", priority=True),
    Binding("ctrl+s", "stop", "Stop", priority=True),
    Binding("ctrl+o", "runs", "Runs", priority=True),
    Binding("ctrl+g", "sweeps", "Sweep", priority=True),
    Binding("f1", "help", "Help", priority=True),
    Binding("question_mark", "help", "Help", show=False),
    Binding("f2", "toggle_x", "X axis", priority=True),
    Binding("f3", "toggle_lr_scale", "LR scale", priority=True),
    Binding("f4", "toggle_loss", "Loss", priority=True),
    Binding("f5", "toggle_phases", "Phases", priority=True),
    Binding("f6", "export", "Export", priority=True),
    Binding("f7", "pin", "Pin", priority=True),
    Binding("f8", "toggle_loss_log", "Log-y", priority=True),
    Binding("f9", "smoothing", "Smooth", priority=True),
    Binding("ctrl+t", "next_metric", "Metric", priority=True),
    # Letters type into the fields: the dashboard's branch key is ctrl+b (b in the runs table).
    Binding("ctrl+b", "branch", "Branch", priority=True, show=False),
]

# Left out of the footer below 100 columns, where every key can't fit.
NARROW_HIDDEN = frozenset(
    {"toggle_x", "toggle_lr_scale", "toggle_loss", "toggle_phases", "pin", "sweeps"}
)


class DashboardActions(_Base):
    """ctrl+s, ctrl+o, f1 to f9, ctrl+t: what each key does on the dashboard."""

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        """Keys that do nothing now are left out of the footer. ctrl+s and ctrl+t stay
        enabled (footer_hidden leaves them out) so that, pressed, they say why."""
        view = self.view
        if action in ("start", "detach"):
            return not view.active and not view.loading  # nothing starts while a run loads
        if action == "branch":
            return view.record is not None
        return True

    def footer_hidden(self) -> frozenset[str]:
        """Below 100 columns some keys leave the footer (f1 lists them; they still work);
        ctrl+s without a run, and ctrl+t with one metric, too."""
        hidden = set(NARROW_HIDDEN if self.has_class("-narrow") else ())
        if not self.view.active:
            hidden.add("stop")
        if len(self.view.metric_names) <= 1:
            hidden.add("next_metric")
        return frozenset(hidden)

    def action_stop(self) -> None:
        if not self.view.active:
            self.notify(
                "Nothing is running, so ctrl+s has nothing to stop "
                "(ctrl+r starts a run here, ctrl+n in the background).",
                markup=False,
            )
            return
        self.controller.stop()
        self.view.stopping = True
        self.request_redraw("status")

    # ---- views -------------------------------------------------------------------

    def _redraw_all_panes(self) -> None:
        self.request_redraw("lr", "loss", "acc")
        self.redraw()

    def action_toggle_x(self) -> None:
        self.context.x_iterations = not self.context.x_iterations
        self._redraw_all_panes()

    def action_toggle_lr_scale(self) -> None:
        self.context.lr_log = not self.context.lr_log
        self._redraw_all_panes()

    def action_toggle_loss(self) -> None:
        self.context.loss_per_batch = not self.context.loss_per_batch
        self._redraw_all_panes()

    def action_toggle_loss_log(self) -> None:
        self.context.loss_log = not self.context.loss_log
        self._redraw_all_panes()

    def action_smoothing(self) -> None:
        i = SMOOTHING.index(self.context.smoothing) if self.context.smoothing in SMOOTHING else 0
        self.context.smoothing = SMOOTHING[(i + 1) % len(SMOOTHING)]
        self.notify(
            f"Loss smoothing {self.context.smoothing:g} (TensorBoard's moving average)"
            if self.context.smoothing
            else "Loss smoothing off",
            timeout=2,
            markup=False,
        )
        self._redraw_all_panes()

    def action_next_metric(self) -> None:
        names = self.view.metric_names or ["test_acc"]
        if len(names) <= 1:
            self.notify(
                f"Only {names[0]} is recorded, so ctrl+t has no other metric to show (a "
                "script's run.end_epoch(test_acc=..., val_loss=...) records more).",
                markup=False,
            )
            return
        i = names.index(self.context.metric) if self.context.metric in names else -1
        self.context.metric = names[(i + 1) % len(names)]
        self._redraw_all_panes()

    async def action_toggle_phases(self) -> None:
        if not self.query("#phases"):
            from steplr_tui.viewer.widgets.phases import PhaseTable

            await self.query_one("#left").mount(PhaseTable(id="phases"))
        self.toggle_class("-phases")
        self.request_redraw("phases")
        self.redraw()

    def action_help(self) -> None:
        from steplr_tui.viewer.screens.help import HelpScreen

        self.app.push_screen(HelpScreen(self))

    # ---- overlays and export -------------------------------------------------------

    def action_pin(self) -> None:
        """Overlay the current (or last) run, to compare the next ones against it."""
        view = self.view
        if not view.epochs or view.opened is None:
            self.notify("Nothing to pin yet: a run needs a finished epoch.", markup=False)
            return
        key = view.record or f"session-{id(view.opened)}"
        name = short_name(Path(view.record).name) if view.record else "this run"
        if any(o.key == key for o in self.context.overlays):
            self._set_overlays([o for o in self.context.overlays if o.key != key])
            self.notify(f"{name} unpinned.", markup=False)
            return
        steps = view.steps_per_epoch
        overlay = Overlay.from_epochs(key, name, view.config, view.epochs, steps)
        self._set_overlays([*self.context.overlays, overlay])
        self.notify(f"{name} pinned: it stays drawn faintly behind the next runs.", markup=False)

    def _set_overlays(self, overlays: list[Overlay]) -> None:
        if len(overlays) > MAX_OVERLAYS:
            self.notify(f"At most {MAX_OVERLAYS} overlays: the oldest was dropped.", markup=False)
            overlays = overlays[-MAX_OVERLAYS:]
        self.context.overlays = overlays
        self.request_redraw("lr", "loss", "acc", "legend")
        self.redraw()

    def action_export(self) -> None:
        from steplr_tui.runfolder.export import run_snippet, write_csv
        from steplr_tui.viewer.screens.export import ExportScreen

        if self.view.record is None:
            self.notify(
                "Nothing to export yet: start, resume or attach to a run first.", markup=False
            )
            return
        try:
            info = read_run(Path(self.view.record))
            csv_path = write_csv(info)
        except (RunNotFound, OSError) as exc:
            self.notify(f"Export failed: {exc}", title="Export", severity="error", markup=False)
            return
        self.note(f"Exported {csv_path}")
        self.app.push_screen(ExportScreen(str(csv_path), run_snippet(info)))

    # ---- branches --------------------------------------------------------------------

    def action_branch(self) -> None:
        """ctrl+b: the branch form for the run on screen (live or finished)."""
        if self.view.record is None:
            self.notify(
                "Nothing to branch yet: start, resume or attach to a run first "
                "(or press b on a run in the runs table, ctrl+o).",
                markup=False,
            )
            return
        from steplr_tui.viewer.screens.branch_form import BranchScreen

        parent = Path(self.view.record)
        runs_dir = self.runs_dir or parent.parent

        def started(folder: Path | None) -> None:
            if folder is None:
                return
            if self.view.active:
                self.notify(
                    f"{folder.name} trains in its own process (ctrl+o, then a, attaches to it).",
                    title="Branch started",
                    timeout=8,
                    markup=False,
                )
            else:
                self.attach_run(folder)

        self.app.push_screen(BranchScreen(parent, runs_dir, self.config), callback=started)

    def overlay_parent(self, path: Path) -> None:
        """A branch on screen is drawn over its parent: overlay the parent's run."""
        try:
            section = read_branch(path)
            if section is None:
                return
            parent = read_run(Path(section.get("parent_path") or path.parent / section["parent"]))
        except (RunNotFound, OSError):
            return  # its parent is gone: the branch alone
        if any(o.key == str(parent.path) for o in self.context.overlays) or not parent.metrics:
            return
        self._set_overlays([*self.context.overlays, Overlay.from_run(parent)])

    # ---- the runs table ------------------------------------------------------------

    def action_runs(self) -> None:
        from steplr_tui.viewer.screens.runs import RunsScreen  # not before the first frame

        runs_dir = self.runs_dir or resolve_runs_dir(None)
        overlaid = {o.key for o in self.context.overlays}
        self.app.push_screen(
            RunsScreen(runs_dir, overlaid, base=self.config), callback=self._on_runs_closed
        )

    def _on_runs_closed(self, choice: RunsChoice | None) -> None:
        if choice is None:
            return
        # Pins of runs that have no record stay; recorded ones follow the table's marks.
        kept = [o for o in self.context.overlays if o.key.startswith("session-")]
        self._set_overlays(kept + [Overlay.from_run(run) for run in choice.overlays])
        if choice.resume is not None:
            self.resume_run(choice.resume)
        elif choice.attach is not None:
            self.attach_run(choice.attach)

    def resume_run(self, path: Path) -> None:
        """Continue a recorded run in this app's thread, where its last checkpoint left it."""
        if not self._ready_to_start():
            return
        try:
            info = read_run(path)
            problem = resume_problem(info)
            config = config_from_record(info, self.config) if not problem else None
        except RunNotFound as exc:
            self.notify(str(exc), title="Cannot resume", severity="error", markup=False)
            return
        if problem or config is None:
            self.notify(problem or "", title="Cannot resume", severity="warning", markup=False)
            return
        self.query_one(ParamPanel).set_values(config)
        self.config = config
        self.controller.start_here(Job(config, self.runs_dir, resume=path))
        self.overlay_parent(path)

    # ---- starting runs ------------------------------------------------------------

    def _ready_to_start(self) -> bool:
        if self.view.loading:
            return False  # the run asked for is on its way: its record decides the fields
        if self.view.active:
            self.notify(
                "A run is on screen and in progress: ctrl+s stops it.",
                severity="warning",
                markup=False,
            )
            return False
        if self.controller.busy:
            self.notify("The last run is still stopping; try again in a moment.", markup=False)
            return False
        return True

    def _fields_config(self) -> TrainConfig | None:
        panel = self.query_one(ParamPanel)
        values, errors = panel.read()
        if errors:
            name, message = next(iter(errors.items()))
            panel.focus_field(name)
            self.notify(
                f"Not started: {message}", title="Invalid parameter", severity="error", markup=False
            )
            return None
        try:
            return self.config.with_values(**values).validated()
        except FieldError as exc:
            self.notify(
                f"Not started: {exc}", title="Invalid parameter", severity="error", markup=False
            )
            return None

    def action_start(self) -> None:
        after_keys(self, self._start_here)  # the keys typed before ctrl+r land first

    def _start_here(self) -> None:
        if not self._ready_to_start():
            return
        config = self._fields_config()
        if config is not None:
            self.config = config
            self.controller.start_here(Job(config, self.runs_dir))

    def action_detach(self) -> None:
        after_keys(self, self._start_detached)

    def _start_detached(self) -> None:
        if not self._ready_to_start():
            return
        config = self._fields_config()
        if config is None:
            return
        from steplr_tui.runfolder.reader import resolve_runs_dir

        try:
            path = self.controller.start_detached(config, self.runs_dir or resolve_runs_dir(None))
        except (StartError, OSError) as exc:
            self.notify(f"Not started: {exc}", title="Detached run", severity="error", markup=False)
            return
        self.config = config
        self.show_loading(path)  # nothing starts again until its record is read
        self.notify(
            f"{path.name} trains in its own process: it goes on when you quit "
            f"(steplr-tui attach {short_name(path.name)} comes back to it).",
            title="Detached run",
            timeout=8,
            markup=False,
        )

    def attach_run(self, path: Path) -> None:
        if self.view.loading or self._ready_to_start():
            self.show_loading(path)
            self.controller.attach(path)
            self.overlay_parent(path)
