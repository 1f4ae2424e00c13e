"""The steering draft: what the live fields (lr, step_size, gamma, milestones, warmup:
those the run's scheduler takes edits of) mean while a run trains.

Plain code, no Textual. A field's text is *typed* until enter or tab commits it,
then *sent* until the run decides, then *queued* (the run said at which boundary)
until it is *applied*. Rules:

- only a field the user typed in sends (the fields model says which: moving
  focus through a field, or a field that shows what the run wrote, sends nothing);
  committing a value that differs from what the run will hold sends an edit of
  that field alone; putting back the value the run holds now withdraws what is
  queued for the field (from any viewer); a half-typed value is never sent;
- a field that has focus, or holds text not yet committed, is never written to;
  every other live field shows what the run will hold after the next boundary
  (its values, then what is queued), so edits applied or withdrawn by anyone
  show everywhere;
- every message is about the moment it is shown: the boundary is the run's own
  answer once it has one, and an edit typed in the last epoch is told at once
  that no boundary is left.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from steplr_tui.runfolder import (
    EDIT_FIELDS,
    Decision,
    EditRequest,
    Request,
    WithdrawRequest,
    new_request_id,
)
from steplr_tui.runfolder.params import FIELD_SPECS
from steplr_tui.runfolder.schedule import ScheduleEdit
from steplr_tui.viewer.fields import FieldsModel
from steplr_tui.viewer.run_view import RunView


@dataclass
class Sent:
    """A request this viewer sent and the run has not answered yet."""

    request: Request
    field: str
    text: str  # the field's text when it was sent


@dataclass
class SteeringDraft:
    """One viewer's typed and sent edits against the run on screen."""

    sender: str = ""
    fields: FieldsModel = field(default_factory=FieldsModel)  # what the user typed
    sent: dict[str, Sent] = field(default_factory=dict)  # request id -> what it was
    refused: Decision | None = None  # the last of ours the run refused...
    refused_text: tuple[str, str] = ("", "")  # ...while its field still holds (field, text)

    def reset(self) -> None:
        """A new run is on screen: nothing of ours is on its way to it."""
        self.sent.clear()
        self.refused = None

    def dirty(self, name: str, text: str) -> bool:
        """The user typed in the field and has not committed it (never overwrite it)."""
        return self.fields.typed(name, text)

    def in_flight(self) -> set[str]:
        """Fields with an edit sent and not answered yet (they keep their text)."""
        return {s.field for s in self.sent.values()}

    def typed(self, view: RunView, texts: dict[str, str]) -> ScheduleEdit | None:
        """Valid typed values that differ from what the run will hold (the preview's edit)."""
        return ScheduleEdit(**self.fields.typed_values(texts, view.effective_values())) or None

    def withdrawing(self, view: RunView, texts: dict[str, str]) -> list[str]:
        """Live fields typed back to what the run holds while an edit of them is queued:
        enter withdraws that edit."""
        pending = (view.pending_edit or ScheduleEdit()).as_dict()
        live = view.live_values()
        out = []
        for name in EDIT_FIELDS:
            text = texts.get(name)
            if name not in pending or name not in live or text is None:
                continue
            if not self.dirty(name, text):
                continue
            try:
                if FIELD_SPECS[name].parse(text) == live[name]:
                    out.append(name)
            except ValueError:
                continue
        return out

    def preview(self, view: RunView, texts: dict[str, str]) -> ScheduleEdit | None:
        """What the LR pane draws as the future: queued edits, then typed ones."""
        queued = view.pending_edit or ScheduleEdit()
        typed = self.typed(view, texts) or ScheduleEdit()
        return queued.merged(typed) or None

    def commit(self, view: RunView, name: str, text: str) -> Request | None:
        """Enter or tab in field `name`: the request to send, if any. A field the user
        did not type in never sends (a tab through it, or the run's own value)."""
        if not view.active or name not in EDIT_FIELDS or not self.dirty(name, text):
            return None
        try:
            value = FIELD_SPECS[name].parse(text)
        except ValueError:
            return None  # the field's own message says why; nothing is sent
        live, effective = view.live_values(), view.effective_values()
        if name not in live:
            return None
        self.fields.committed(name, text)
        self.refused = None
        if value == effective[name]:
            return None
        queued_here = any(name in p.edit.as_dict() for p in view.pending.values())
        if value == live[name] and queued_here:
            request: Request = WithdrawRequest(new_request_id(), (name,), self.sender)
        else:
            request = EditRequest(new_request_id(), ScheduleEdit(**{name: value}), self.sender)
        self.sent[request.id] = Sent(request, name, text)
        return request

    def settle(self, view: RunView) -> None:
        """Forget what the run has answered; remember a refusal to tell it."""
        for rid in [rid for rid in self.sent if rid in view.decisions]:
            sent = self.sent.pop(rid)
            decision = view.decisions[rid]
            if decision.decision == "refused":
                self.refused = decision
                self.refused_text = (sent.field, sent.text)
                # The field keeps the refused text, but as typed: it is not what runs.
                self.fields.committed(sent.field, "\0refused")
        if not view.active:
            self.sent.clear()

    def subtitle(self, view: RunView, texts: dict[str, str], errors: dict[str, str]) -> str:
        """The LR pane's subtitle about edits, or '' when there is nothing to say."""
        bad = [n for n in EDIT_FIELDS if n in errors and self.dirty(n, texts.get(n, ""))]
        if bad:
            return f"fix {', '.join(bad)} to edit the schedule"
        name, text = self.refused_text
        if self.refused is not None and texts.get(name) != text:
            self.refused = None  # typed over: the message is no longer about this field
        if self.refused is not None:
            d = self.refused
            what = d.edit.describe() if d.edit else d.action
            return f"refused {what}: {d.reason}"
        back = self.withdrawing(view, texts)
        if back:
            pending = view.pending_edit or ScheduleEdit()
            queued = ScheduleEdit(**{n: v for n, v in pending.as_dict().items() if n in back})
            held = ", ".join(f"{n} {texts[n]}" for n in back)
            return f"typed {held}, as the run holds it · enter withdraws {queued.describe()}"
        typed = self.typed(view, texts)
        if typed:
            if view.last_epoch_running:
                return (
                    f"typed {typed.describe()} · the run ends with this epoch: "
                    "no boundary left to apply it at"
                )
            return (
                f"typed {typed.describe()} · enter queues it for after epoch {view.current_epoch}"
            )
        if self.sent:
            what = ", ".join(describe_request(s.request) for s in self.sent.values())
            return f"sent {what} · waiting for the run to read it"
        pending = view.pending_edit
        if pending:
            return f"queued {pending.describe()} · applies after epoch {view.pending_epoch}"
        return ""


def describe_request(request: Request) -> str:
    """A request in words: 'gamma 0.3', 'withdraw lr', 'stop'."""
    if isinstance(request, EditRequest):
        return request.edit.describe()
    if isinstance(request, WithdrawRequest):
        return f"withdraw {', '.join(request.fields)}"
    return "stop"
