"""The events of `events.jsonl`: what a run reports, one JSON object a line, and their codec.

Everything a viewer draws comes from these, so a dashboard in another terminal,
or one opened after the run ended, sees what a dashboard in the run's own
process sees.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from steplr_tui.runfolder.codec import FormatError, _Fields, dumps, pack_losses, unpack_losses
from steplr_tui.runfolder.files import FORMAT_VERSION
from steplr_tui.runfolder.schedule import ScheduleEdit
from steplr_tui.runfolder.status import Status

# ---- events -------------------------------------------------------------------------


@dataclass(frozen=True)
class RunOpened:
    """A session of the run began: its folder, its parameters, and the process writing it.

    `first_epoch` is greater than 1 when a run is resumed; viewers then drop what
    they hold of epochs from there on (they are trained again).
    """

    path: str
    config: Mapping[str, Any] = field(default_factory=dict)
    first_epoch: int = 1
    kind: Literal["builtin", "script"] = "builtin"
    pid: int = 0
    host: str = ""


@dataclass(frozen=True)
class RunStarted:
    """Data is loaded and the model built; the first batch is next.

    For a user's script, what it did not say is empty or 0 (steps_per_epoch 0:
    not known until the first epoch ends).
    """

    device: str
    dataset: str
    data_dir: str
    n_train: int
    n_test: int
    epochs: int
    steps_per_epoch: int
    batch_size: int
    first_epoch: int = 1  # greater than 1 when a run is resumed
    world_size: int = 1
    backend: str = ""
    global_batch: int = 0  # batch_size x world_size; 0 when batch_size is not known
    model: str = ""


@dataclass(frozen=True)
class Notice:
    """Something the user must know (sample fallback, a library warning)."""

    text: str
    level: Literal["info", "warning", "error"] = "info"
    persistent: bool = False


@dataclass(frozen=True)
class BatchProgress:
    """Progress inside an epoch, at most every progress interval (epoch is 1-based,
    step counts batches done, steps is the epoch's batches or 0 when not known).

    `losses` holds every batch loss since the previous BatchProgress, in order, so a
    viewer can keep spikes that a running mean would hide.
    """

    epoch: int
    step: int
    steps: int
    losses: tuple[float, ...]
    samples_per_s: float
    elapsed: float


@dataclass(frozen=True)
class EpochEnd:
    """An epoch finished: lr used during it, its mean training loss, test accuracy in %.

    `metrics` holds any other per-epoch figures a script gave (`val_loss`, ...).
    """

    epoch: int
    lr: float
    train_loss: float
    test_acc: float
    seconds: float
    elapsed: float
    eval_seconds: float = 0.0  # the part of `seconds` spent on the test set
    # A live edit applied at the end of this epoch (it governs the epochs after it).
    edit: ScheduleEdit | None = None
    metrics: Mapping[str, float] = field(default_factory=dict)
    steps: int = 0  # batches the epoch trained (0: not recorded)
    # Every param group's lr during the epoch (empty: one group, or not recorded), and
    # group 0's lr at each batch when the scheduler steps per batch (else empty).
    lrs: tuple[float, ...] = ()
    step_lrs: tuple[float, ...] = ()

    def metric(self, name: str) -> float:
        """A figure by name: test_acc, train_loss, or one of `metrics` (nan if absent)."""
        if name == "test_acc":
            return self.test_acc
        if name == "train_loss":
            return self.train_loss
        return float(self.metrics.get(name, math.nan))


@dataclass(frozen=True)
class LrPlan:
    """The schedule ahead, as torch computes it (a copy of the scheduler stepped on a
    throwaway optimizer), so a viewer draws any scheduler without torch.

    `lrs[i]` holds each param group's lr for epoch `first_epoch + i`, the lr in force at
    the epoch's first batch; `step_lrs` holds group 0's lr at each scheduler step from
    that epoch on when the scheduler steps per batch (`steps_per_epoch` steps an
    epoch). Written when the run starts, when the first epoch shows how the scheduler
    steps, and after each applied edit; `pending` names the queued edit(s) a plan
    previews (empty: the run's own plan). `scheduler` holds the class and settings;
    `editable` the fields that take live edits (empty: watched only); `note` says in
    words what has no plan (ReduceLROnPlateau: it follows its metric, `lrs` empty).
    """

    first_epoch: int
    lrs: tuple[tuple[float, ...], ...]
    scheduler: Mapping[str, Any] = field(default_factory=dict)
    steps_per_epoch: int = 1
    step_lrs: tuple[float, ...] = ()
    editable: tuple[str, ...] = ()
    pending: str = ""
    note: str = ""

    @property
    def kind(self) -> str:
        return str(self.scheduler.get("class", ""))


Decided = Literal["queued", "applied", "withdrawn", "refused"]


@dataclass(frozen=True)
class Decision:
    """What the run did with one control request.

    - queued: an edit was read; it applies after epoch `epoch`.
    - applied: an edit applied after epoch `epoch`; a stop or withdraw took effect.
    - withdrawn: an edit was taken back (by a withdraw request, or because the run
      ended first) before it applied; `fields` says which of its values.
    - refused: the request was not acted on; `reason` says why.
    `request` is the request's id (None for a line that had no readable id) and
    `line` its line number in control.jsonl (0 for a request from the run's own process).
    """

    request: str | None
    action: str  # edit, stop, withdraw, or the unreadable line's type ("?")
    decision: Decided
    epoch: int = 0
    edit: ScheduleEdit | None = None
    fields: tuple[str, ...] = ()
    reason: str = ""
    sender: str = ""
    line: int = 0


@dataclass(frozen=True)
class RunEnded:
    """The run is over; `message` says why when it did not complete."""

    status: Status
    message: str
    epochs_done: int
    elapsed: float
    batch: int = 0  # the batch of the next epoch at which a stop took effect


Event = RunOpened | RunStarted | Notice | BatchProgress | EpochEnd | Decision | RunEnded | LrPlan

_EVENT_TYPES: dict[type, str] = {
    RunOpened: "opened",
    RunStarted: "started",
    Notice: "notice",
    BatchProgress: "progress",
    EpochEnd: "epoch",
    Decision: "decision",
    RunEnded: "ended",
    LrPlan: "plan",
}


def epoch_report(event: EpochEnd) -> tuple[str, str]:
    """The two lines the reference script prints per epoch, in its exact format."""
    return (
        f"Epoch {event.epoch}, Loss: {event.train_loss:.4f}, LR: {event.lr:.6f}",
        f"Test Accuracy: {event.test_acc:.2f}%",
    )


def _edit_dict(edit: ScheduleEdit | None) -> dict[str, Any] | None:
    return edit.as_dict() if edit else None


def encode_event(event: Event, seq: int, time: float) -> str:
    """An event as one line of events.jsonl (without the newline)."""
    kind = _EVENT_TYPES[type(event)]
    body: dict[str, Any] = {"type": kind, "seq": seq, "time": round(time, 3)}
    if isinstance(event, RunOpened):
        body |= {
            "path": event.path,
            "config": dict(event.config),
            "first_epoch": event.first_epoch,
            "kind": event.kind,
            "pid": event.pid,
            "host": event.host,
            "format": FORMAT_VERSION,
        }
    elif isinstance(event, RunStarted):
        body |= {k: getattr(event, k) for k in _STARTED_FIELDS}
    elif isinstance(event, Notice):
        body |= {"text": event.text, "level": event.level, "persistent": event.persistent}
    elif isinstance(event, BatchProgress):
        body |= {
            "epoch": event.epoch,
            "step": event.step,
            "steps": event.steps,
            "losses_f32": pack_losses(event.losses),
            "samples_per_s": event.samples_per_s,
            "elapsed": event.elapsed,
        }
    elif isinstance(event, EpochEnd):
        body |= {
            "epoch": event.epoch,
            "lr": event.lr,
            "train_loss": event.train_loss,
            "test_acc": event.test_acc,
            "seconds": event.seconds,
            "elapsed": event.elapsed,
            "eval_seconds": event.eval_seconds,
            "edit": _edit_dict(event.edit),
            "metrics": dict(event.metrics),
            "steps": event.steps,
        }
        if event.lrs:
            body["lrs"] = list(event.lrs)
        if event.step_lrs:
            body["step_lrs"] = list(event.step_lrs)
    elif isinstance(event, LrPlan):
        body |= {
            "first_epoch": event.first_epoch,
            "lrs": [list(g) for g in event.lrs],
            "scheduler": dict(event.scheduler),
            "steps_per_epoch": event.steps_per_epoch,
            "step_lrs": list(event.step_lrs),
            "editable": list(event.editable),
            "pending": event.pending,
            "note": event.note,
        }
    elif isinstance(event, Decision):
        body |= {
            "request": event.request,
            "action": event.action,
            "decision": event.decision,
            "epoch": event.epoch,
            "edit": _edit_dict(event.edit),
            "fields": list(event.fields),
            "reason": event.reason,
            "from": event.sender,
            "line": event.line,
        }
    elif isinstance(event, RunEnded):
        body |= {
            "status": event.status.value,
            "message": event.message,
            "epochs_done": event.epochs_done,
            "elapsed": event.elapsed,
            "batch": event.batch,
        }
    return dumps(body)


_STARTED_FIELDS = (
    "device",
    "dataset",
    "data_dir",
    "n_train",
    "n_test",
    "epochs",
    "steps_per_epoch",
    "batch_size",
    "first_epoch",
    "world_size",
    "backend",
    "global_batch",
    "model",
)


def decode_event(obj: Any) -> tuple[int, Event] | None:
    """(seq, event) from one decoded line of events.jsonl; None for a type this version
    does not know (a newer writer's), so readers skip it. Raises FormatError."""
    if not isinstance(obj, dict) or not isinstance(obj.get("type"), str):
        raise FormatError("an events.jsonl line must be an object with a 'type'")
    kind = obj["type"]
    f = _Fields(obj, kind)
    seq = f.int("seq", 0)
    if kind == "opened":
        event: Event = RunOpened(
            path=f.str("path"),
            config=f.dict("config"),
            first_epoch=f.int("first_epoch", 1),
            kind="script" if obj.get("kind") == "script" else "builtin",
            pid=f.int("pid", 0),
            host=f.str("host", ""),
        )
    elif kind == "started":
        event = RunStarted(
            device=f.str("device"),
            dataset=f.str("dataset"),
            data_dir=f.str("data_dir"),
            n_train=f.int("n_train"),
            n_test=f.int("n_test"),
            epochs=f.int("epochs"),
            steps_per_epoch=f.int("steps_per_epoch"),
            batch_size=f.int("batch_size"),
            first_epoch=f.int("first_epoch", 1),
            world_size=f.int("world_size", 1),
            backend=f.str("backend", ""),
            global_batch=f.int("global_batch", 0),
            model=f.str("model", ""),
        )
    elif kind == "notice":
        level = f.str("level", "info")
        event = Notice(
            text=f.str("text"),
            level=level if level in ("info", "warning", "error") else "info",  # type: ignore[arg-type]
            persistent=f.bool("persistent", False),
        )
    elif kind == "progress":
        event = BatchProgress(
            epoch=f.int("epoch"),
            step=f.int("step"),
            steps=f.int("steps"),
            losses=unpack_losses(obj["losses_f32"]) if "losses_f32" in obj else f.floats("losses"),
            samples_per_s=f.float("samples_per_s", 0.0),
            elapsed=f.float("elapsed", 0.0),
        )
    elif kind == "epoch":
        metrics = {
            k: float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else math.nan
            for k, v in f.dict("metrics").items()
        }
        event = EpochEnd(
            epoch=f.int("epoch"),
            lr=f.float("lr"),
            train_loss=f.float("train_loss"),
            test_acc=f.float("test_acc", math.nan),
            seconds=f.float("seconds", 0.0),
            elapsed=f.float("elapsed", 0.0),
            eval_seconds=f.float("eval_seconds", 0.0),
            edit=f.edit("edit"),
            metrics=metrics,
            steps=f.int("steps", 0),
            lrs=f.floats("lrs") if "lrs" in obj else (),
            step_lrs=f.floats("step_lrs") if "step_lrs" in obj else (),
        )
    elif kind == "plan":
        rows = obj.get("lrs", [])
        if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
            raise FormatError("a 'plan' line needs 'lrs' as a list of lists of numbers")
        editable = obj.get("editable", [])
        event = LrPlan(
            first_epoch=f.int("first_epoch", 1),
            lrs=tuple(_Fields({"r": r}, kind).floats("r") for r in rows),
            scheduler=f.dict("scheduler"),
            steps_per_epoch=f.int("steps_per_epoch", 1),
            step_lrs=f.floats("step_lrs") if "step_lrs" in obj else (),
            editable=tuple(x for x in editable if isinstance(x, str))
            if isinstance(editable, list)
            else (),
            pending=f.str("pending", ""),
            note=f.str("note", ""),
        )
    elif kind == "decision":
        decision = f.str("decision")
        if decision not in ("queued", "applied", "withdrawn", "refused"):
            raise FormatError(f"unknown decision {decision!r}")
        request = obj.get("request")
        fields = obj.get("fields", [])
        if not isinstance(fields, list) or not all(isinstance(x, str) for x in fields):
            raise FormatError("a 'decision' line needs 'fields' as a list of names")
        event = Decision(
            request=request if isinstance(request, str) else None,
            action=f.str("action", "?"),
            decision=decision,  # type: ignore[arg-type]
            epoch=f.int("epoch", 0),
            edit=f.edit("edit"),
            fields=tuple(fields),
            reason=f.str("reason", ""),
            sender=f.str("from", ""),
            line=f.int("line", 0),
        )
    elif kind == "ended":
        try:
            status = Status(f.str("status"))
        except ValueError as exc:
            raise FormatError(f"unknown status {obj.get('status')!r}") from exc
        event = RunEnded(
            status=status,
            message=f.str("message", ""),
            epochs_done=f.int("epochs_done"),
            elapsed=f.float("elapsed", 0.0),
            batch=f.int("batch", 0),
        )
    else:
        return None
    return seq, event
