"""The help screen (f1, or ? outside a text field): every key, and how steering works."""

from __future__ import annotations

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, Static

STEERING = """\
[b]Steering a run[/b] (the fields its scheduler takes edits of stay open:
  StepLR's lr, step_size, gamma; MultiStepLR's milestones; a warmup's length)
  Type a value: the LR pane draws its future in blue at once.
  enter or tab queues it; the run says after which epoch it applies.
  A half-typed value is never sent. Putting back the value the run holds
  withdraws what is queued for that field (from any viewer).
  At the epoch's end, after scheduler.step(), the run sets StepLR's
  step_size and gamma and every param group's lr, as a script would.
  In the last epoch there is no boundary left: the edit is refused.
  A field you are typing in is never overwritten by the run's values;
  only a field you typed in sends (a tab through a field sends nothing).
  Every other field shows the run's record: 'unknown' where it has no value.

[b]Runs that outlive the terminal[/b]
  ctrl+n starts the fields as a detached run and watches it; ctrl+q then
  leaves it training. steplr-tui attach \\[RUN] watches it again from any
  terminal; steplr-tui stop RUN and steplr-tui edit RUN --lr X steer it
  from the shell.
"""

RUNS_KEYS = (
    ("s", "sort by newest, best accuracy, last accuracy, last loss, time"),
    ("space", "mark or unmark the run as an overlay (up to 4)"),
    ("c", "clear the marks"),
    ("enter", "resume the run here (STOPPED, INTERRUPTED or FAILED)"),
    ("a", "attach: watch and steer a running run, or open a finished one"),
    ("b", "branch the run: a new run from its checkpoint after an epoch, with an edit"),
    ("escape", "close, keeping the marked overlays"),
)


SWEEP_KEYS = (
    ("enter", "attach the dashboard to the trial: watch and steer it"),
    ("x", "stop the trial (the sweep counts it as pruned)"),
    ("s", "sort by trial, last accuracy (the objective), peak accuracy, status, time"),
    ("a", "the region plot's next pair of parameters"),
    ("p", "below 120 columns: the next pane"),
    ("n", "a new sweep (the dashboard's fields are its fixed parameters)"),
    ("escape", "back to the dashboard"),
)


HELP_TEXT = {
    "start": "start a run here, in this app (a fresh run each time)",
    "detach": "start the fields as a detached run, which outlives the terminal",
    "stop": "stop the run at its next batch (STOPPED, checkpoint kept)",
    "runs": "the recorded runs: compare, overlay, resume, attach",
    "sweeps": "the newest sweep (trials, curves, the good region), or a new one",
    "help": "this help",
    "toggle_x": "x axis in epochs or iterations (batches), on all three panes",
    "toggle_lr_scale": "LR pane: log or linear scale",
    "toggle_loss": "loss pane: per batch (band and mean) or per epoch",
    "toggle_phases": "the phase table in place of the log, and back",
    "export": "write the run's metrics.csv and show a PyTorch snippet",
    "pin": "pin the run as an overlay, to compare the next ones; again to unpin",
    "toggle_loss_log": "loss pane: log or linear y",
    "smoothing": "loss pane: smoothing off, 0.6, 0.9, 0.99 (TensorBoard's EMA)",
    "branch": "branch the run: a new run from its checkpoint after an epoch, with an edit",
    "next_metric": "the per-epoch pane: next metric (a script may give several)",
    "quit": "quit (a run in this app stops first; a detached one goes on)",
}


def key_table(rows) -> Table:
    """Keys and what they do, in two columns: a description that wraps stays in its own."""
    table = Table.grid(padding=(0, 1))
    table.add_column(style="bold", no_wrap=True, min_width=8)
    table.add_column(ratio=1)
    for key, text in rows:
        table.add_row(key, text)
    return table


class HelpScreen(ModalScreen[None]):
    """Keys of the screen in view, the runs table's keys, and the steering rules."""

    CSS_PATH = "dialogs.tcss"  # read as it first opens (the dashboard has no use for it)

    BINDINGS = [
        Binding("escape", "close", "Close"),
        Binding("f1", "close", "Close", show=False),
        Binding("q", "close", "Close", show=False),
    ]

    def __init__(self, under: Screen) -> None:
        super().__init__()
        self.under = under

    def parts(self) -> list[tuple[str, list[tuple[str, str]]]]:
        """(title, [(key, what it does)]) for the screen in view, the runs table and the
        sweep view."""
        keys = []
        for node in (self.under, self.app):
            for binding in node.BINDINGS:
                if binding.action not in HELP_TEXT or binding.key == "question_mark":
                    continue
                keys.append((self.app.get_key_display(binding), HELP_TEXT[binding.action]))
        keys += [
            ("ctrl+p", "search every action (the command palette)"),
            ("tab", "next field; shift+tab the one before"),
            ("up/down", "in a number field: nudge it (0.001 -> 0.002, 5 -> 6)"),
            ("enter", "in a drop-down: open it"),
        ]
        return [
            ("[b]Keys[/b]", keys),
            ("[b]In the runs table (ctrl+o)[/b]", list(RUNS_KEYS)),
            ("[b]In the sweep view (ctrl+g)[/b]", list(SWEEP_KEYS)),
        ]

    def plain(self) -> str:
        """Everything the help says, as plain text."""
        lines = []
        for title, rows in self.parts():
            lines.append(title.replace("[b]", "").replace("[/b]", ""))
            lines += [f"{key} {text}" for key, text in rows]
        return "\n".join([*lines, STEERING])

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box"):
            for title, rows in self.parts():
                yield Static(title, classes="help-title")
                yield Static(key_table(rows), classes="help-keys")
            yield Static(STEERING, id="help-text")
        yield Footer()

    def action_close(self) -> None:
        self.dismiss(None)
