"""The branch form: `b` on a run in the runs table (ctrl+b on the dashboard's run) asks
after which epoch (one of those with a kept checkpoint) and which edit, then starts the
branch detached, as `steplr-tui branch RUN --at EPOCH ... --detach` does.

Each field is checked as it is typed, with the branch command's own rules and messages.
"""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.containers import Grid, Vertical
from textual.widgets import Footer, Label, Static

from steplr_tui.runfolder.branch import BranchError, BranchPlan, plan_branch
from steplr_tui.runfolder.checkpoints import branchable_epochs
from steplr_tui.runfolder.params import SPECS, FieldError, TrainConfig
from steplr_tui.runfolder.reader import RunNotFound, read_run
from steplr_tui.runfolder.schedule import ScheduleEdit
from steplr_tui.viewer.screens.form import FormInput, FormScreen
from steplr_tui.viewer.starter import StartError

EDIT_FIELDS = ("lr", "step_size", "gamma")


class BranchScreen(FormScreen):
    """Dismisses with the branch's folder once it started, or None."""

    CSS_PATH = "dialogs.tcss"  # read as it first opens (the dashboard has no use for it)

    FIELDS_PREFIX = "branch-"
    FIRST = "at"

    def __init__(self, parent: Path, runs_dir: Path, base: TrainConfig | None = None) -> None:
        super().__init__()
        self.parent_path = parent
        self.runs_dir = runs_dir
        self.base = base or TrainConfig()
        self.plan: BranchPlan | None = None
        self.problem = ""

    def _defaults(self) -> dict[str, str]:
        epochs = branchable_epochs(self.parent_path)
        try:
            info = read_run(self.parent_path)
            total = info.config.get("epochs")
        except RunNotFound:
            total = None
        # The last kept epoch that leaves epochs to train, else the last of all.
        left = [e for e in epochs if isinstance(total, int) and e < total]
        at = (left or epochs or [1])[-1]
        return {"at": str(at), "lr": "", "step_size": "", "gamma": "", "epochs": str(total or "")}

    def compose(self) -> ComposeResult:
        with Vertical(id="branch-form"):
            yield Static(
                f"Branch {self.parent_path.name}: a new run from its checkpoint after an "
                "epoch, with the edit applied at that boundary (blank: unchanged)",
                id="branch-title",
                markup=False,
            )
            with Grid(id="branch-grid"):
                for key, text in self._defaults().items():
                    yield Label("after epoch" if key == "at" else key, classes="param-label")
                    yield FormInput(text, id=f"branch-{key}", compact=True)
            yield Static("", id="branch-hint", markup=False)
            yield Static("", id="branch-errors", markup=False)
        yield Footer()

    def _check(self) -> None:
        epochs = branchable_epochs(self.parent_path)
        listed = ", ".join(str(e) for e in epochs) or "none yet"
        self.query_one("#branch-hint", Static).update(
            f"epochs with a checkpoint: {listed}. ctrl+r (or enter) starts it detached, "
            "escape cancels"
        )
        self.plan, self.problem = None, ""
        try:
            self.plan = plan_branch(self.parent_path, *self._request())
        except (FieldError, BranchError) as exc:
            self.problem = str(exc)
        self.query_one("#branch-errors", Static).update(self.problem)

    def _request(self) -> tuple[int, ScheduleEdit, TrainConfig, int | None]:
        at = self._text("at")
        if not at.isascii() or not at.isdigit() or not 1 <= int(at) <= 1000:
            raise FieldError(f"after epoch must be an epoch from 1 to 1000 (got {at[:20]!r})")
        values = {}
        for name in (*EDIT_FIELDS, "epochs"):
            text = self._text(name)
            if text:
                values[name] = SPECS[name].parse(text)
        edit = ScheduleEdit(values.get("lr"), values.get("step_size"), values.get("gamma"))
        return int(at), edit, self.base, values.get("epochs")

    def action_start(self) -> None:
        self._check()
        if self.plan is None:
            self.notify(self.problem, title="Not started", severity="error", markup=False)
            return
        starter = getattr(self.app, "starter", None)
        try:
            if starter is None or starter.branch is None:
                raise StartError("this viewer has no run side: start branches with steplr-tui")
            folder = starter.branch(self.plan, self.runs_dir)
        except StartError as exc:
            self.query_one("#branch-errors", Static).update(f"not started: {exc}")
            return
        self.dismiss(folder)
