"""What each parameter field shows, and when a field may send: the one state the screens read.

Plain Python, no Textual (tested without a terminal, as `run_view` is). The fields
are both the user's input and the display of the run on screen, so who may write
into a field, and when a field may send, is decided here and nowhere else:

- No run on screen: the fields are the form for the next run (the flags' values,
  else the built-in defaults).
- Loading: a run was asked for (attach, a pick in the runs table) and its record
  is not read yet. Every field is empty, locked, and says "loading the run…";
  keys that would start a run do nothing.
- A run on screen, live or finished, re-opened, resumed or attached to in the
  middle: every field shows the run's record, its recorded config, then every
  edit applied since, in order (the fields a running run takes edits of also show
  what is queued for its next boundary). A value the record does not have
  (a script that gave no batch size) shows "unknown", and momentum of an
  optimizer that has none shows "does not apply": never a built-in default.
- A field the user typed in keeps the user's text: nothing else writes there. A
  field sends an edit only when the user typed in it; moving focus through a
  field, or a field that shows what the run wrote, never sends anything.
- After a run ends, the fields are again the form for the next run, holding what
  the run ended with; a live field typed during the run but not applied is told
  as lost, in the log and the LR pane's subtitle, never dropped silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from steplr_tui.runfolder import EDIT_FIELDS
from steplr_tui.runfolder.params import FIELD_SPECS, FieldError
from steplr_tui.runfolder.schedule import ScheduleEdit
from steplr_tui.viewer.run_view import RunView

__all__ = ["LOADING", "NOT_APPLICABLE", "UNKNOWN", "FieldsModel", "Shown", "record_values"]

LOADING = "loading the run…"
UNKNOWN = "unknown"
NOT_APPLICABLE = "does not apply"


@dataclass(frozen=True)
class Shown:
    """What one field shows: its text, or (empty text) a note saying why it has none.
    A choice the fields do not offer (a script's 'adadelta') is shown as its own text."""

    text: str
    note: str = ""


def _show(name: str, value: Any) -> Shown:
    spec = FIELD_SPECS[name]
    if value is None or value == "":
        return Shown("", UNKNOWN)
    if spec.kind == "choice":
        try:
            return Shown(spec.parse(str(value)))
        except FieldError:
            return Shown(str(value))  # what the run used, though a new run can't
    try:
        spec.check_value(value)
    except FieldError:
        if spec.kind == "epochs" and isinstance(value, (list, tuple)):
            return Shown(spec.format(value))  # what the run used ([2, 2, 4]), shown as is
        return Shown("", UNKNOWN)
    return Shown(spec.format(value))


def _momentum_applies(config: dict[str, Any], kind: str) -> bool:
    optimizer = str(config.get("optimizer") or "").lower()
    if optimizer == "sgd":
        return True
    # A script's optimizer of another kind may have a momentum of its own (RMSprop):
    # shown when the record has it. The built-in Adam has none.
    return kind == "script" and config.get("momentum") is not None and optimizer != "adam"


def record_values(view: RunView) -> dict[str, Shown]:
    """Every field as the run's record says: its config, then each applied edit in order,
    then (while it runs) what is queued for the next boundary."""
    if view.opened is None:
        return {name: Shown("", LOADING) for name in FIELD_SPECS} if view.loading else {}
    config = view.config
    kind = view.opened.kind
    out = {name: _show(name, config.get(name)) for name in FIELD_SPECS}
    if not _momentum_applies(config, kind):
        out["momentum"] = Shown("", NOT_APPLICABLE)
    out.update(_schedule_values(view))
    live = view.effective_values() if view.active else view.live_values()
    for name in EDIT_FIELDS:
        if name in live:
            out[name] = _show(name, live[name])
    return out


# torch's class -> the built-in trainer's --scheduler kind (a script's too).
KINDS = {
    "StepLR": "step",
    "MultiStepLR": "multistep",
    "CosineAnnealingLR": "cosine",
    "ReduceLROnPlateau": "plateau",
}


def _schedule_values(view: RunView) -> dict[str, Shown]:
    """The scheduler, its milestones and its warmup as the record says: the built-in
    trainer's config, else the scheduler the run described (a script's OneCycleLR is
    shown by its class name, which a new run can't take); never a default."""
    config = view.config
    plan = view.lr_plan
    out: dict[str, Shown] = {}
    if "scheduler" in config:
        out["scheduler"] = _show("scheduler", config["scheduler"])
    elif plan is not None:
        name = plan.kind
        parts = [str(p.get("class")) for p in plan.scheduler.get("schedulers", [])]
        if parts == ["LinearLR", "StepLR"]:  # the built-in warmup-step's shape
            name = "warmup-step"
        out["scheduler"] = Shown(KINDS.get(name, name)) if name else Shown("", UNKNOWN)
    elif view.plan is not None:
        out["scheduler"] = Shown("step")  # a StepLR run (its record names no other)
    else:
        out["scheduler"] = Shown("", UNKNOWN)
    live = view.live_values()
    for name in ("milestones", "warmup"):
        value = live.get(name, config.get(name))
        out[name] = _show(name, value) if value not in (None, [], ()) else Shown("")
    return out


@dataclass
class FieldsModel:
    """The text this model last wrote into each field (or the user committed there):
    a field whose text differs holds what the user typed, and only such a field sends."""

    shown: dict[str, str] = field(default_factory=dict)
    lost: str = ""  # the last typed edit that could not be applied any more, in words
    _lost_texts: dict[str, str] = field(default_factory=dict)  # the live fields then

    # ---- who typed what -----------------------------------------------------------------

    def typed(self, name: str, text: str) -> bool:
        """The user typed in this field since it was last written or committed."""
        return name in self.shown and self.shown[name] != text

    def committed(self, name: str, text: str) -> None:
        """Enter or leaving the field: its text is now what the field stands for."""
        self.shown[name] = text

    def typed_values(self, texts: dict[str, str], against: dict[str, Any]) -> dict[str, Any]:
        """The edit fields the user typed a valid value in that differs from `against`
        (what the run holds, or will): parsed, by name. Fields not in `against` (what
        the run takes no edits of) are left out."""
        out = {}
        for name in EDIT_FIELDS:
            text = texts.get(name)
            if text is None or name not in against or not self.typed(name, text):
                continue
            try:
                value = FIELD_SPECS[name].parse(text)
            except FieldError:
                continue
            if value != against[name]:
                out[name] = value
        return out

    # ---- what to write ------------------------------------------------------------------

    def reset(self, texts: dict[str, str]) -> None:
        """The fields show `texts`, none of it typed (a run was started from them)."""
        self.shown = dict(texts)
        self.lost = ""

    def to_write(
        self,
        view: RunView,
        texts: dict[str, str],
        everything: bool = False,
        keep: set[str] | frozenset[str] = frozenset(),
    ) -> dict[str, Shown]:
        """What to write into the fields to show the run on screen: every field that
        holds no typed text (all of them when `everything`: a run was just opened),
        except those in `keep` (an edit of it is on its way)."""
        values = record_values(view)
        if everything:
            self.lost = ""
        out = {}
        for name, shown in values.items():
            text = texts.get(name)
            if text is None or name in keep:
                continue
            if not everything and self.typed(name, text):
                continue
            if text != shown.text or everything:
                out[name] = shown
            self.shown[name] = shown.text
        return out

    # ---- edits that can no longer be applied ----------------------------------------------

    def ended(self, view: RunView, texts: dict[str, str], unanswered: list[str]) -> list[str]:
        """The run just ended: lines for the log about what was typed or sent too late.
        `unanswered`: edits this viewer sent that the run never answered, in words."""
        lines = [
            f"edit {what} was not applied: the run ended before it read it" for what in unanswered
        ]
        late = self.typed_values(texts, view.live_values())
        if late:
            what = ScheduleEdit(**late).describe()
            lines.append(
                f"typed {what} was not sent: the run ended after epoch "
                f"{view.epochs[-1].epoch if view.epochs else 0}, with no boundary left to apply "
                "it at (the fields now plan the next run)"
            )
        self.lost = lines[-1] if lines else ""
        self._lost_texts = {n: texts.get(n, "") for n in EDIT_FIELDS}
        return lines

    def lost_subtitle(self, texts: dict[str, str]) -> str:
        """The LR pane says an edit was lost until the user types again or a run opens."""
        if self.lost and any(texts.get(n, "") != t for n, t in self._lost_texts.items()):
            self.lost = ""
        return self.lost.split(" (the fields")[0] if self.lost else ""
