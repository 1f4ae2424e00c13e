"""The parameter panel: one compact field per training parameter, validated as typed."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.geometry import Size
from textual.message import Message
from textual.reactive import Reactive
from textual.validation import ValidationResult, Validator
from textual.widgets import Input, Select, Static

from steplr_tui.runfolder import LIVE_FIELDS
from steplr_tui.runfolder.params import (
    FIELD_SPECS,
    SCHEDULER_KINDS,
    FieldError,
    FieldSpec,
    TrainConfig,
    parse_values,
)
from steplr_tui.viewer.fields import LOADING, Shown
from steplr_tui.viewer.widgets.choice import ChoiceSelect
from steplr_tui.viewer.widgets.keys import OrderedKeys
from steplr_tui.viewer.widgets.restyle import StyledOnce, restyled_once

__all__ = ["LIVE_FIELDS", "ParamPanel"]

CHOICE_LABELS = {
    "adam": "Adam",
    "sgd": "SGD",
    "auto": "auto",
    "cpu": "cpu",
    "cuda": "cuda",
    "mps": "mps",
    "mnist": "MNIST",
    "fashion-mnist": "Fashion-MNIST",
    "kmnist": "KMNIST",
    "sample": "sample",
    "linear": "linear",
    "mlp": "MLP",
    "cnn": "CNN",
}
# The scheduler's own fields, shown only for the schedulers that have them (a script's
# scheduler of another class: whenever the run recorded a value).
ONLY_FOR = {"milestones": "multistep", "warmup": "warmup-step"}
_DEFAULTS = {name: getattr(TrainConfig(), name) for name in ONLY_FOR}


def _labels(names: Iterable[str]) -> str:
    """The label column: a line for each field shown."""
    return "\n".join(FIELD_SPECS[name].label for name in names)


LOADING_SHOWN = Shown("", LOADING)  # every field while a run's record is read


def _choice_options(spec: FieldSpec, shown: Shown | None) -> list[tuple[str, str]]:
    """A drop-down's options: the spec's choices, and what the field shows when it is
    none of them (a script's Adadelta, an empty field saying why)."""
    options = [(CHOICE_LABELS.get(c, c), c) for c in spec.choices]
    if shown is not None and shown.text not in spec.choices:
        options.append((shown.note or shown.text, shown.text))
    return options


def _locked_by_choices(optimizer: str, scheduler: str) -> set[str]:
    """The fields a choice leaves nothing to set in: momentum for any optimizer but SGD,
    step_size and gamma for cosine."""
    locked = set() if optimizer == "sgd" else {"momentum"}
    if scheduler == "cosine":
        locked |= {"step_size", "gamma"}
    return locked


def _height(text: str, width: int) -> int:
    """Lines that `text` takes, wrapped to `width` (an empty one too takes a line)."""
    return len(Content(text).wrap(width))


class SpecValidator(Validator):
    """Runs a parameter's own rule, so the field and the flag say the same thing."""

    def __init__(self, spec: FieldSpec) -> None:
        super().__init__()
        self.spec = spec

    def validate(self, value: str) -> ValidationResult:
        try:
            self.spec.parse(value)
        except FieldError as exc:
            return self.failure(str(exc))
        return self.success()


class NumberInput(StyledOnce, OrderedKeys, Input):
    """A numeric field whose value Up and Down nudge by one step; keys land in order."""

    BINDINGS = [
        Binding("up", "nudge(1)", "Up", show=False),
        Binding("down", "nudge(-1)", "Down", show=False),
    ]
    # Input sets its virtual size (its text's width) on every key, and Textual's own
    # reactive lays the whole screen out again for it, then redraws all of it. A field's
    # place in the panel never depends on its text, and it has no scrollbars to place: the
    # new size scrolls its text and repaints it alone.
    virtual_size: Reactive[Size] = Reactive(Size(0, 0), layout=False)

    def __init__(self, spec: FieldSpec, value: str, **kwargs: Any) -> None:
        super().__init__(
            value=value,
            validators=[SpecValidator(spec)],
            validate_on=["changed", "blur", "submitted"],
            compact=True,
            **kwargs,
        )
        self.spec = spec
        if value == "":
            # Input validates a value as it changes, and "" is its default: an empty
            # field made so (an attach's, loading) would not say it is invalid.
            self.validate(value)

    def action_nudge(self, direction: int) -> None:
        new = self.spec.nudge(self.value, direction)
        if new is not None:
            self.value = new
            self.cursor_position = len(new)


class ParamPanel(Vertical):
    """Fields for every parameter; posts `ParamPanel.Changed` on each edit."""

    class Changed(Message):
        """The fields changed: parsed values of the valid ones, and messages for the rest."""

        def __init__(self, values: dict[str, Any], errors: dict[str, str]) -> None:
            super().__init__()
            self.values = values
            self.errors = errors

    def __init__(
        self, config: TrainConfig, cursor_blink: bool = True, loading: bool = False, **kwargs: Any
    ) -> None:
        """`loading`: made empty and locked, saying "loading the run…" (an attach at
        launch), as `show` and `set_running` would leave them: made so, not changed to
        so just after they were styled (a restyle of each field, twice)."""
        super().__init__(**kwargs)
        self.border_title = "Parameters"
        self._initial = config
        self._cursor_blink = cursor_blink
        self._loading = loading
        # Fields that show what a run wrote and a new run can't take (an unknown batch
        # size, a script's Adadelta): not flagged as errors while they show it.
        self.from_run: dict[str, str] = {}
        self.notes: dict[str, str] = {}  # why a field is empty: "unknown", "loading the run…"
        self._run_has: set[str] = set()  # of ONLY_FOR: the fields the shown record has
        self._invalid = False  # the border says a field is invalid
        self._errors_text: str | None = None  # what the errors line says (None: not yet)
        self._errors_due = False  # a change of its height waits for the next frame
        self._labels_text = ""  # the label column's lines, one for each field shown
        self.running = loading  # the fields show a run in progress, locked (set_running)

    def compose(self) -> ComposeResult:
        kind = self._initial.scheduler
        shown = [n for n in FIELD_SPECS if n not in ONLY_FOR or ONLY_FOR[n] == kind]
        with Horizontal(id="param-grid"):
            # The labels are one widget: fifteen, each styled, laid out and drawn on
            # its own, took about 20 ms of the first frame.
            self._labels_text = _labels(shown)
            yield Static(self._labels_text, id="param-labels", markup=False)
            with Vertical(id="param-fields"):
                # Locked from the start as the first sync would lock them: locked once
                # mounted, each was restyled once more before the first frame.
                locked = _locked_by_choices(self._initial.optimizer, kind)
                for spec in FIELD_SPECS.values():
                    value = getattr(self._initial, spec.name)
                    loading = self._loading
                    off = loading or spec.name in locked
                    if spec.kind == "choice":
                        options = _choice_options(spec, LOADING_SHOWN if loading else None)
                        field = ChoiceSelect(
                            options,
                            value="" if loading else value,
                            allow_blank=False,
                            compact=True,
                            id=f"field-{spec.name}",
                            disabled=off,
                        )
                        field.shown_options = options
                    else:
                        text = "" if loading else spec.format(value)
                        field = NumberInput(
                            spec,
                            text,
                            id=f"field-{spec.name}",
                            disabled=off,
                            placeholder=LOADING_SHOWN.note if loading else "",
                        )
                        field.cursor_blink = self._cursor_blink and not loading
                    field.display = spec.name in shown
                    yield field
        yield Static("", id="param-errors", markup=False)

    def on_mount(self) -> None:
        # Looked up once: the status line asks for the dataset four times a second.
        self._fields = {name: self.query_one(f"#field-{name}") for name in FIELD_SPECS}
        self._labels = self.query_one("#param-labels", Static)
        self._sync_momentum()
        self._sync_scheduler()
        self._refresh_errors()

    def text_of(self, name: str) -> str:
        """One field's current text."""
        fields = getattr(self, "_fields", None)
        widget = fields[name] if fields else self.query_one(f"#field-{name}")
        return str(widget.value)  # type: ignore[attr-defined]

    def field_texts(self) -> dict[str, str]:
        """The current text of every field, keyed by parameter name."""
        return {name: self.text_of(name) for name in FIELD_SPECS}

    def read(self) -> tuple[dict[str, Any], dict[str, str]]:
        """(values, errors): every field parsed by its own rule."""
        texts = self.field_texts()
        values, errors = parse_values(texts)
        for name, note in self.notes.items():
            if name in errors and note and texts[name] == "":
                spec = FIELD_SPECS[name]
                errors[name] = f"{spec.label}: {note} for the run on screen; enter {spec.rule}"
        locked = _locked_by_choices(texts["optimizer"], texts["scheduler"])
        if "momentum" in errors and "momentum" in locked:
            # Adam has no momentum: a stale, disabled field must not block Start.
            del errors["momentum"]
            values["momentum"] = self._initial.momentum
        for name in ONLY_FOR:
            if not self._shows(name):
                # A field the scheduler has not: hidden, it neither blocks Start nor goes
                # into the run's record.
                errors.pop(name, None)
                values[name] = _DEFAULTS[name]
        running = self.running
        if not running and texts["scheduler"] == "cosine":
            for name in ("step_size", "gamma"):  # disabled: cosine has neither
                if name in errors:
                    del errors[name]
                    values[name] = getattr(self._initial, name)
        if running and values.get("milestones") == () and self._shows("milestones"):
            # Planning a run, empty is every step_size epochs; a running MultiStepLR
            # would take it as no decay left at all.
            errors["milestones"] = (
                "milestones is empty: a running MultiStepLR needs at least one epoch to "
                "decay after, like 4,6"
            )
            del values["milestones"]
        return values, errors

    def _shows(self, name: str) -> bool:
        """The scheduler on screen has this field (ONLY_FOR), or the run on screen, a
        script's of another class, recorded a value for it."""
        kind = self.text_of("scheduler")
        if kind in SCHEDULER_KINDS:
            return kind == ONLY_FOR[name]
        return name in self._run_has

    def set_values(self, values: Any) -> None:
        """Show a run's parameters in the fields (a TrainConfig, or a recorded config's
        dict, of which only the values each field accepts are shown)."""
        items = values.as_dict() if isinstance(values, TrainConfig) else dict(values)
        for spec in FIELD_SPECS.values():
            if spec.name not in items or items[spec.name] is None:
                continue
            value = items[spec.name]
            widget = self.query_one(f"#field-{spec.name}")
            if spec.kind == "choice":
                if value in spec.choices:
                    widget.value = value
                continue
            try:
                spec.check_value(value)
            except FieldError:
                continue
            widget.value = spec.format(value)

    def focus_field(self, name: str) -> None:
        self.query_one(f"#field-{name}").focus()

    def set_running(self, running: bool, live: Iterable[str] = LIVE_FIELDS) -> None:
        """Lock the fields that describe the run in progress; those in `live` (what the
        run's scheduler takes edits of: StepLR's lr, step_size and gamma) stay open."""
        with restyled_once():
            self._set_running(running, live)

    def _set_running(self, running: bool, live: Iterable[str]) -> None:
        live = frozenset(live)
        focused = self.screen.focused
        name = (focused.id or "").removeprefix("field-") if focused is not None else ""
        moved = running and name in FIELD_SPECS and name not in live
        if moved:
            # Locked, the focused field would hand focus to the next field, and that
            # one to the next as it is locked in turn: a restyle and a new footer for
            # each (eleven, as an attach locks every field).
            self.screen.set_focus(None)
        for spec in FIELD_SPECS.values():
            locked = running and spec.name not in live
            field = self.query_one(f"#field-{spec.name}")
            field.disabled = locked
            if isinstance(field, Input):
                # A blink repaints twice a second, and with the status line in the
                # same frame Textual repaints the whole column between them: 5 ms
                # of the GIL each time, taken from the training thread. The cursor
                # stays shown, steady, while a run is in progress.
                field.cursor_blink = self._cursor_blink and not running
        # A flag, not a class: a class restyled all ~50 of the panel's widgets, twice
        # for each run (0.1 s of an attach's first frame).
        self.running = running
        if not running:
            self._sync_momentum()
        self._sync_scheduler()
        if moved:  # where the chain of hops ended: the first field still open
            open_fields = [f for f in self._fields.values() if f.display and not f.disabled]
            if open_fields:
                open_fields[0].focus()

    def show(self, values: dict[str, Shown]) -> None:
        """Write what the fields model says into these fields (only ever fields the user
        did not type in): a value, or an empty field saying why it has none."""
        with restyled_once():
            self._show(values)

    def _show(self, values: dict[str, Shown]) -> None:
        for name, shown in values.items():
            spec = FIELD_SPECS[name]
            widget = self.query_one(f"#field-{name}")
            self.notes[name] = shown.note
            if name in ONLY_FOR:
                (self._run_has.add if shown.text else self._run_has.discard)(name)
            try:
                spec.parse(shown.text)
                self.from_run.pop(name, None)
            except FieldError:
                self.from_run[name] = shown.text
            if isinstance(widget, ChoiceSelect):
                self._show_choice(widget, spec, shown)
                continue
            widget.placeholder = shown.note
            if widget.value != shown.text:
                widget.value = shown.text
                widget.cursor_position = len(shown.text)
        self._sync_scheduler()

    def _show_choice(self, widget: ChoiceSelect, spec: FieldSpec, shown: Shown) -> None:
        options = _choice_options(spec, shown)
        if widget.shown_options != options:
            widget.shown_options = options
            widget.set_options(options)
        if widget.value != shown.text:
            widget.value = shown.text

    @on(Input.Changed)
    @on(Select.Changed)
    def _on_field_changed(self, event: Message) -> None:
        event.stop()
        if isinstance(event, Select.Changed) and event.select.id == "field-optimizer":
            self._sync_momentum()
        if isinstance(event, Select.Changed) and event.select.id == "field-scheduler":
            self._sync_scheduler()
        self._refresh_errors()

    def _sync_momentum(self) -> None:
        locked = _locked_by_choices(self.text_of("optimizer"), self.text_of("scheduler"))
        self.query_one("#field-momentum").disabled = "momentum" in locked

    def _sync_scheduler(self) -> None:
        """Show the fields the scheduler has: milestones for MultiStepLR, warmup for a
        warmup; cosine uses neither step_size nor gamma (disabled, as momentum for Adam)."""
        fields = getattr(self, "_fields", None)
        if not fields:
            return  # not mounted yet: on_mount syncs
        for name in ONLY_FOR:
            shown = self._shows(name)
            if fields[name].display != shown:
                fields[name].display = shown
        text = _labels([name for name in FIELD_SPECS if fields[name].display])
        if text != self._labels_text:
            self._labels_text = text
            self._labels.update(text)
        if not self.running:
            locked = _locked_by_choices(self.text_of("optimizer"), self.text_of("scheduler"))
            for name in ("step_size", "gamma"):
                self._fields[name].disabled = name in locked

    def _refresh_errors(self) -> None:
        values, errors = self.read()
        # What a run wrote is no mistake of the user's: said when a run is started.
        shown = {n: m for n, m in errors.items() if self.from_run.get(n) != self.text_of(n)}
        text = "\n".join(shown.values())
        before = self._errors_text
        if text != before:
            self._errors_text = text
            box = self.query_one("#param-errors", Static)
            width = box.content_region.width
            if before is None or not width:
                box.update(text)  # the first frame's
            elif self._errors_due:
                pass  # the update on its way shows the newest text, at its height
            elif _height(before, width) == _height(text, width):
                box.update(text, layout=False)  # the same lines: no layout
            else:
                # Its new height lays the whole screen out again and redraws it: after
                # the frame that draws the key that caused it, not before.
                self._errors_due = True
                self.call_after_refresh(self._show_errors)
        self._show_invalid(bool(shown))
        self.post_message(self.Changed(values, errors))

    def _show_errors(self) -> None:
        self._errors_due = False
        self.query_one("#param-errors", Static).update(self._errors_text or "")

    def _show_invalid(self, invalid: bool) -> None:
        """The panel's border turns the theme's error colour while a field is invalid.
        Set on the panel alone: a class (`-invalid`) restyled all its ~60 widgets, twice
        for a key that emptied a field and the next that filled it (60 ms of the event
        loop each time, and several times that on a loaded machine)."""
        if invalid == self._invalid:
            return
        self._invalid = invalid
        if invalid:
            self.styles.border = ("round", self.app.theme_variables["error"])
        else:
            self.styles.inline.clear_rule("border_top")
            self.styles.inline.clear_rule("border_right")
            self.styles.inline.clear_rule("border_bottom")
            self.styles.inline.clear_rule("border_left")
            self.refresh()
