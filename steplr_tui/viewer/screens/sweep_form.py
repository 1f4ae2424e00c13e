"""The new-sweep form: lr, step_size and gamma as spaces, trials and parallel; every other
parameter is the dashboard's fields. Start runs `steplr-tui sweep ... --detach`, so the
sweep lives in a process of its own and outlives this terminal, as a detached run does.

Each field is checked as it is typed, with the sweep command's own rules, in the form's
words (`gamma must be ...`, not `--gamma must be ...`). ctrl+r starts it, as it starts a
run in the dashboard (ctrl+s means Stop everywhere); enter in a field does too.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.containers import Grid, Vertical
from textual.widgets import Footer, Label, Static

from steplr_tui.runfolder.params import SPECS, FieldError
from steplr_tui.runfolder.paths import resolve_runs_dir
from steplr_tui.study.space import (
    DIMENSIONS,
    SpaceError,
    parse_dimension,
    parse_schedulers,
    step_notes,
)
from steplr_tui.study.spec import SweepSpec, check_name, new_name, read_spec, sweep_folder
from steplr_tui.viewer.screens.form import FormInput, FormScreen

# The dashboard's fields a sweep takes as its fixed parameters (the box's own too).
FIXED = ("epochs", "batch_size", "optimizer", "momentum", "model", "seed", "dataset")
MACHINE = ("device", "threads")
# The sweep command's flags, as the form names its fields.
_FLAG = re.compile(r"--(lr|step-size|gamma|trials|parallel|name|scheduler)\b")


def form_words(text: str) -> str:
    """A message of the sweep command's, in the form's words: '--gamma must be ...' reads
    'gamma must be ...', '--step-size' reads 'step_size'."""
    return _FLAG.sub(lambda m: m.group(1).replace("-", "_"), text)


class NewSweepScreen(FormScreen):
    """Dismisses with (the sweep's folder, its spec) once it started, or None. From a
    sweep's view (`like`), the new sweep starts as a copy of that one."""

    CSS_PATH = "sweep.tcss"  # read as it first opens (the dashboard has no use for it)

    FIELDS_PREFIX = "sweep-"
    FIRST = "name"

    def __init__(self, dashboard: Any, like: SweepSpec | None = None, parallel: int = 1) -> None:
        super().__init__()
        self.dashboard = dashboard
        self.like = like
        self.parallel = parallel  # the like sweep's trials at a time on this box
        self.values: dict[str, Any] = {}
        self.problem = ""

    def _fields(self) -> dict[str, str]:
        if self.like is not None:
            space = self.like.space
            return {
                "name": new_name(),
                **{name: space[name].describe() for name in DIMENSIONS},
                "scheduler": ",".join(self.like.schedulers) or "step",
                "trials": str(self.like.trials),
                "parallel": str(self.parallel),
            }
        texts = self.dashboard.query_one("#params").field_texts()
        epochs = texts.get("epochs", "5")
        # step_size from 1 up to (not reaching) the epochs: a step_size that never drops
        # the lr makes gamma meaningless.
        last = min(3, int(epochs) - 1) if epochs.strip().isdigit() else 3
        return {
            "name": new_name(),
            "lr": texts.get("lr", "0.001"),
            "step_size": ",".join(str(k) for k in range(1, max(last, 1) + 1)),
            "gamma": "0.1:0.9",
            "scheduler": texts.get("scheduler", "step"),
            "trials": "16",
            "parallel": "1",
        }

    def compose(self) -> ComposeResult:
        with Vertical(id="sweep-form"):
            yield Static(
                "New sweep: lr, step_size and gamma as a value, a list (1,2,3), a "
                "range (0.1:0.9) or a log range (1e-4:1e-1:log); scheduler: one kind, or "
                "a list to compare (step,cosine,plateau)",
                id="form-title",
            )
            with Grid(id="form-grid"):
                for key, text in self._fields().items():
                    yield Label(key, classes="param-label")
                    yield FormInput(text, id=f"sweep-{key}", compact=True)
            yield Static("", id="form-fixed", markup=False)
            yield Static("", id="form-errors", markup=False)
        yield Footer()

    def _check(self) -> None:
        """Every field by the sweep command's rules; the first problem is shown."""
        problems = []
        try:
            check_name(self._text("name").strip())
        except SpaceError as exc:
            problems.append(form_words(str(exc)))
        for name in DIMENSIONS:
            try:
                parse_dimension(name, self._text(name))
            except SpaceError as exc:
                problems.append(form_words(str(exc)))
        try:
            kinds = list(parse_schedulers(self._text("scheduler")))
        except SpaceError as exc:
            kinds = []
            problems.append(form_words(str(exc)))
        for key, hi in (("trials", 100_000), ("parallel", 64)):
            raw = self._text(key).strip()
            if not raw.isdigit() or not 1 <= int(raw) <= hi:
                problems.append(f"{key} must be a whole number from 1 to {hi} (got {raw!r})")
        if self.like is not None:
            values, errors = dict(self.like.fixed), {}
            machine = self.dashboard.query_one("#params").read()[0]
            values.update({n: machine[n] for n in MACHINE if n in machine})
            source = f"as in {self.like.name}"
        else:
            values, errors = self.dashboard.query_one("#params").read()
            source = "the dashboard's fields: change them there"
        fixed = [n for n in (*FIXED, *MACHINE) if n in errors]
        if fixed:
            problems.append(f"fix the dashboard's {', '.join(fixed)} first: {errors[fixed[0]]}")
        self.values = values
        notes = []
        with contextlib.suppress(SpaceError):
            step = parse_dimension("step_size", self._text("step_size"))
            notes = [form_words(n) for n in step_notes(step, values.get("epochs"))]
        self.problem = problems[0] if problems else ""
        self.query_one("#form-errors", Static).update(self.problem or " ".join(notes))
        shown = " · ".join(f"{n} {values[n]}" for n in FIXED if n in values)
        self.query_one("#form-fixed", Static).update(
            f"every trial ({source}): {shown}.{self._unswept(kinds, values)} ctrl+r or "
            "enter starts, escape cancels"
        )

    @staticmethod
    def _unswept(kinds: list[str], values: dict[str, Any]) -> str:
        """What the sweep's trials do not take from the dashboard, said, not dropped."""
        notes = []
        if "multistep" in kinds and values.get("milestones"):
            notes.append("multistep decays every step_size epochs (milestones are not swept)")
        if "warmup-step" in kinds and values.get("warmup", 1) != 1:
            notes.append("warmup-step warms up for 1 epoch (warmup is not swept)")
        return "".join(f" {n[0].upper()}{n[1:]}." for n in notes)

    def _command(self) -> list[str]:
        args = ["sweep", "--detach", "--name", self._text("name").strip()]
        for name in DIMENSIONS:
            args += [SPECS[name].flag, self._text(name).strip()]
        args += ["--scheduler", ",".join(parse_schedulers(self._text("scheduler")))]
        args += [
            "--trials",
            self._text("trials").strip(),
            "--parallel",
            self._text("parallel").strip(),
        ]
        for name in (*FIXED, *MACHINE):
            if name in self.values:
                args += [SPECS[name].flag, SPECS[name].format(self.values[name])]
        runs = self.dashboard.runs_dir or resolve_runs_dir(None)
        config = self.dashboard.config
        if config.data_dir:
            args += ["--data-dir", config.data_dir]
        if not config.download:
            args.append("--no-download")
        return [*args, "--runs-dir", str(runs)]

    def action_start(self) -> None:
        self._check()
        if self.problem:
            self.notify(self.problem, title="Not started", severity="error", markup=False)
            return
        self.query_one("#form-errors", Static).update("starting the sweep…")
        self._launch(self._command())

    @work(thread=True, exclusive=True, group="sweep-start")
    def _launch(self, command: list[str]) -> None:
        try:
            done = subprocess.run(
                [sys.executable, "-m", "steplr_tui", *command],
                capture_output=True,
                text=True,
                timeout=60,
                stdin=subprocess.DEVNULL,
            )
            ok, said = done.returncode == 0, (done.stderr.strip() or done.stdout.strip())
        except (OSError, subprocess.TimeoutExpired) as exc:
            ok, said = False, str(exc)
        self.app.call_from_thread(self._launched, ok, said, command)

    def _launched(self, ok: bool, said: str, command: list[str]) -> None:
        if not ok:
            line = said.splitlines()[-1] if said else "the sweep command failed"
            line = form_words(line.removeprefix("steplr-tui sweep: "))
            self.query_one("#form-errors", Static).update(line)
            return
        runs = Path(command[command.index("--runs-dir") + 1])
        folder = sweep_folder(runs, command[command.index("--name") + 1])
        try:
            spec = read_spec(folder)
        except (SpaceError, FieldError) as exc:
            self.query_one("#form-errors", Static).update(form_words(str(exc)))
            return
        self.dismiss((folder, spec))
