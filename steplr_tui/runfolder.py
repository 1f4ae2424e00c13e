"""The run folder's format: file names, statuses, events, requests, and their JSON codec.

A run folder is the interface between a run and its viewers. The run process (the
built-in trainer, a user's script through `steplr_tui.track`, rank 0 of a DDP job)
is the only writer of `events.jsonl`, `metrics.jsonl`, `status.json`,
`config.json` and `checkpoint.pt`. Viewers and the shell append requests to
`control.jsonl`; the run records its decision on each of them in `events.jsonl`.
Everything a viewer draws comes from `events.jsonl`, so a dashboard in another
terminal, or one opened after the run ended, sees what a dashboard in the run's
own process sees.

This module is the format's one definition (the README documents it for other
tools). It imports neither torch nor Textual: both sides of the folder use it.
"""

from __future__ import annotations

import base64
import contextlib
import json
import math
import os
import sys
import uuid
from array import array
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Literal

from steplr_tui.schedule import ScheduleEdit

FORMAT_VERSION = 1

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
EVENTS_FILE = "events.jsonl"
CONTROL_FILE = "control.jsonl"
STATUS_FILE = "status.json"
CHECKPOINT_FILE = "checkpoint.pt"
OUTPUT_FILE = "output.log"  # stdout and stderr of a detached run

# A request line longer than this is refused unread: requests are a few dozen bytes.
MAX_REQUEST_BYTES = 4096
# The most of control.jsonl one poll reads, so a flood of garbage cannot stall a run.
MAX_POLL_BYTES = 64 * 1024
LIVE_FIELDS = ("lr", "step_size", "gamma")
# Dataset names as RunStarted reports them, to the --dataset value that loads them again.
DATASET_CHOICE = {
    "MNIST": "mnist",
    "Fashion-MNIST": "fashion-mnist",
    "KMNIST": "kmnist",
    "MNIST sample": "sample",
}


class FormatError(ValueError):
    """A line that is JSON but not an event or request of this format; says what is wrong."""


class Status(str, Enum):
    """A run's status: the one vocabulary of status.json, events, viewers and the shell."""

    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    STOPPED = "STOPPED"
    FAILED = "FAILED"
    # Never written by a run: what a RUNNING status whose process is gone reads as.
    INTERRUPTED = "INTERRUPTED"

    @property
    def final(self) -> bool:
        return self is not Status.RUNNING

    def __str__(self) -> str:
        return self.value


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

    def metric(self, name: str) -> float:
        """A figure by name: test_acc, train_loss, or one of `metrics` (nan if absent)."""
        if name == "test_acc":
            return self.test_acc
        if name == "train_loss":
            return self.train_loss
        return float(self.metrics.get(name, math.nan))


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


Event = RunOpened | RunStarted | Notice | BatchProgress | EpochEnd | Decision | RunEnded

_EVENT_TYPES: dict[type, str] = {
    RunOpened: "opened",
    RunStarted: "started",
    Notice: "notice",
    BatchProgress: "progress",
    EpochEnd: "epoch",
    Decision: "decision",
    RunEnded: "ended",
}


def epoch_report(event: EpochEnd) -> tuple[str, str]:
    """The two lines the reference script prints per epoch, in its exact format."""
    return (
        f"Epoch {event.epoch}, Loss: {event.train_loss:.4f}, LR: {event.lr:.6f}",
        f"Test Accuracy: {event.test_acc:.2f}%",
    )


# ---- requests --------------------------------------------------------------------------


@dataclass(frozen=True)
class EditRequest:
    """Change lr, step_size and/or gamma at the next epoch boundary."""

    id: str
    edit: ScheduleEdit
    sender: str = ""


@dataclass(frozen=True)
class StopRequest:
    """Stop before the next batch; the checkpoint of the last completed epoch is kept."""

    id: str
    sender: str = ""
    reason: str = ""


@dataclass(frozen=True)
class WithdrawRequest:
    """Take back every queued change to these fields (of any request, from anyone)."""

    id: str
    fields: tuple[str, ...]
    sender: str = ""


Request = EditRequest | StopRequest | WithdrawRequest


def new_request_id() -> str:
    return uuid.uuid4().hex[:12]


def sender_name(role: str) -> str:
    """Who sent a request, for the log of every viewer: 'viewer 4242@gpu-box'."""
    import socket

    return f"{role} {os.getpid()}@{socket.gethostname()}"


# ---- codec --------------------------------------------------------------------------


def _clean(value: Any) -> Any:
    """Strict JSON: a float that is not finite is written as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    return value


def dumps(obj: Any) -> str:
    """One compact line of strict JSON (NaN and infinities become null)."""
    return json.dumps(_clean(obj), separators=(",", ":"), allow_nan=False)


def as_float32(values: Any) -> tuple[float, ...]:
    """Values as the float32 numbers a progress line can hold (batch losses are float32
    already; a script's Python floats are rounded once, by the run, so every viewer,
    live or replaying, folds the very same numbers)."""
    return tuple(array("f", values).tolist())


def pack_losses(values: Any) -> str:
    """Batch losses as base64 of little-endian float32: exact for float32 losses, and
    read back 50 times faster than JSON numbers (a 1,000-epoch run has a million)."""
    packed = array("f", values)
    if sys.byteorder != "little":
        packed.byteswap()
    return base64.b64encode(packed.tobytes()).decode("ascii")


def unpack_losses(text: Any) -> tuple[float, ...]:
    if not isinstance(text, str):
        raise FormatError("a 'progress' line needs 'losses_f32' as base64 text")
    try:
        raw = base64.b64decode(text, validate=True)
    except ValueError as exc:
        raise FormatError("'losses_f32' is not base64") from exc
    if len(raw) % 4:
        raise FormatError("'losses_f32' does not hold whole float32 values")
    values = array("f")
    values.frombytes(raw)
    if sys.byteorder != "little":
        values.byteswap()
    return tuple(values.tolist())


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


class _Fields:
    """Typed access to a decoded JSON object; a wrong or missing value raises FormatError."""

    def __init__(self, obj: Mapping[str, Any], kind: str) -> None:
        self.obj = obj
        self.kind = kind

    def _fail(self, key: str, want: str) -> FormatError:
        return FormatError(f"a '{self.kind}' line needs '{key}' as {want}")

    def int(self, key: str, default: int | None = None) -> int:
        value = self.obj.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._fail(key, "a whole number")
        return value

    def float(self, key: str, default: float | None = None) -> float:
        value = self.obj.get(key, default)
        if value is None and key in self.obj:
            return math.nan  # a non-finite float, written as null
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self._fail(key, "a number")
        return float(value)

    def str(self, key: str, default: str | None = None) -> str:
        value = self.obj.get(key, default)
        if not isinstance(value, str):
            raise self._fail(key, "text")
        return value

    def bool(self, key: str, default: bool | None = None) -> bool:
        value = self.obj.get(key, default)
        if not isinstance(value, bool):
            raise self._fail(key, "true or false")
        return value

    def dict(self, key: str) -> dict[str, Any]:
        value = self.obj.get(key, {})
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self._fail(key, "an object")
        return value

    def edit(self, key: str) -> ScheduleEdit | None:
        value = self.obj.get(key)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self._fail(key, "an object")
        return ScheduleEdit.from_dict(value) or None

    def floats(self, key: str) -> tuple[float, ...]:
        value = self.obj.get(key)
        if not isinstance(value, list):
            raise self._fail(key, "a list of numbers")
        out = []
        for v in value:
            if v is None:
                out.append(math.nan)
            elif isinstance(v, bool) or not isinstance(v, (int, float)):
                raise self._fail(key, "a list of numbers")
            else:
                out.append(float(v))
        return tuple(out)


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


def encode_request(request: Request) -> bytes:
    """A request as one line of control.jsonl, newline included."""
    body: dict[str, Any] = {"id": request.id, "from": request.sender}
    if isinstance(request, EditRequest):
        body = {"type": "edit", **body, **request.edit.as_dict()}
    elif isinstance(request, StopRequest):
        body = {"type": "stop", **body, "reason": request.reason}
    else:
        body = {"type": "withdraw", **body, "fields": list(request.fields)}
    return (dumps(body) + "\n").encode()


class RequestError(ValueError):
    """A control line that is not a request this run can act on; says why.

    `request_id` and `action` are what could be read of it, for the record.
    """

    def __init__(self, reason: str, request_id: str | None = None, action: str = "?") -> None:
        super().__init__(reason)
        self.request_id = request_id
        self.action = action


def decode_request(line: bytes) -> Request:
    """Parse one control.jsonl line; raise RequestError naming the problem.

    The value rules are checked by the run (they are the fields' rules); this
    checks the shape: an object with a known type, an id and numbers where
    numbers go.
    """
    if len(line) > MAX_REQUEST_BYTES:
        raise RequestError(
            f"the line is {len(line)} bytes, over the {MAX_REQUEST_BYTES}-byte limit"
        )
    try:
        obj = json.loads(line)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RequestError(f"not JSON ({str(exc).splitlines()[0][:80]})") from exc
    if not isinstance(obj, dict):
        raise RequestError("a request must be a JSON object")
    rid = obj.get("id")
    rid = rid if isinstance(rid, str) and 0 < len(rid) <= 64 else None
    kind = obj.get("type")
    action = kind if isinstance(kind, str) and len(kind) <= 20 else "?"
    if rid is None:
        raise RequestError("a request needs an 'id' (text of 1 to 64 characters)", None, action)
    sender = obj.get("from")
    sender = sender[:80] if isinstance(sender, str) else ""
    if kind == "stop":
        reason = obj.get("reason")
        return StopRequest(rid, sender, reason[:200] if isinstance(reason, str) else "")
    if kind == "edit":
        values: dict[str, Any] = {}
        for name in LIVE_FIELDS:
            if name not in obj:
                continue
            value = obj[name]
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise RequestError(f"{name} must be a number (got {value!r:.40})", rid, action)
            if name == "step_size":
                if isinstance(value, float) and not value.is_integer():
                    raise RequestError(
                        f"step_size must be a whole number (got {value!r})", rid, action
                    )
                values[name] = int(value)
            else:
                values[name] = float(value)
        unknown = sorted(set(obj) - {"type", "id", "from", "time", *LIVE_FIELDS})
        if unknown:
            raise RequestError(
                f"an edit changes only lr, step_size and gamma (got {', '.join(unknown)})",
                rid,
                action,
            )
        if not values:
            raise RequestError("an edit needs at least one of lr, step_size, gamma", rid, action)
        return EditRequest(rid, ScheduleEdit(**values), sender)
    if kind == "withdraw":
        fields = obj.get("fields")
        if (
            not isinstance(fields, list)
            or not fields
            or not all(isinstance(x, str) and x in LIVE_FIELDS for x in fields)
        ):
            raise RequestError(
                "a withdraw needs 'fields': a list of lr, step_size, gamma", rid, action
            )
        return WithdrawRequest(rid, tuple(dict.fromkeys(fields)), sender)
    raise RequestError(
        f"unknown request type {kind!r:.40}: expected edit, stop or withdraw", rid, action
    )


def append_line(path: Path, data: bytes) -> None:
    """Append one line with a single write on an O_APPEND descriptor, so lines from
    concurrent writers never interleave."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        written = os.write(fd, data)
        if written != len(data):  # a full disk mid-line: the reader waits for a newline
            raise OSError(f"only {written} of {len(data)} bytes were written to {path}")
    finally:
        os.close(fd)


class LineTail:
    """Reads the complete lines added to a file since the last call.

    A torn last line (a writer mid-write, a kill) is kept back until its newline
    arrives; it is never an error. A file that shrank was rewritten: reading starts
    over from its beginning. `limit` bounds the bytes read per call.
    """

    def __init__(self, path: Path, offset: int = 0, limit: int | None = None) -> None:
        self.path = path
        self.offset = offset  # bytes consumed: the start of the next line
        self.limit = limit
        self.line_number = 0  # complete lines consumed (counted from `offset`)
        self._partial = b""

    def read(self) -> list[bytes]:
        try:
            with open(self.path, "rb") as fh:
                size = os.fstat(fh.fileno()).st_size
                if size < self.offset:
                    self.offset, self._partial, self.line_number = 0, b"", 0
                start = self.offset + len(self._partial)
                if size <= start:
                    return []
                fh.seek(start)
                data = fh.read(self.limit if self.limit is not None else -1)
        except FileNotFoundError:
            return []
        data = self._partial + data
        *lines, self._partial = data.split(b"\n")
        self.offset += len(data) - len(self._partial)
        self.line_number += len(lines)
        return lines

    @property
    def pending_bytes(self) -> int:
        """Bytes of a line not yet complete."""
        return len(self._partial)

    def drop_partial(self) -> None:
        """Skip the incomplete line held back (an oversized line is never waited for)."""
        self.offset += len(self._partial)
        self._partial = b""


def file_size(path: Path) -> int:
    with contextlib.suppress(OSError):
        return path.stat().st_size
    return 0
