"""The requests of `control.jsonl`: edits, stops and withdraws from viewers and the shell,
and their codec. The run decides each one and records the decision as an event."""

from __future__ import annotations

import json
import os
import re
import threading
import uuid
from collections import deque
from dataclasses import dataclass
from typing import Any

from steplr_tui.runfolder.codec import dumps
from steplr_tui.runfolder.files import EDIT_FIELDS, MAX_REQUEST_BYTES
from steplr_tui.runfolder.schedule import ScheduleEdit

# ---- requests --------------------------------------------------------------------------


@dataclass(frozen=True)
class EditRequest:
    """Change lr, step_size, gamma, milestones and/or warmup at the next epoch boundary."""

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


# What of a refused line may be copied into the record: an id and a type that look like
# ones; anything else of a line that is not a request is never recorded verbatim (a
# link or a stray file could make it someone else's secret).
_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


def _kind_of(value: object) -> str:
    return type(value).__name__ if not isinstance(value, str) else "text"


def _printable(text: str, limit: int) -> str:
    return "".join(c for c in text if c.isprintable())[:limit]


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
    rid = rid if isinstance(rid, str) and _ID.fullmatch(rid) else None
    kind = obj.get("type")
    action = kind if kind in ("edit", "stop", "withdraw") else "?"
    if rid is None:
        raise RequestError(
            "a request needs an 'id' (1 to 64 letters, digits, '_', '-', '.' or ':')",
            None,
            action,
        )
    sender = obj.get("from")
    sender = _printable(sender, 80) if isinstance(sender, str) else ""
    if kind == "stop":
        reason = obj.get("reason")
        return StopRequest(rid, sender, _printable(reason, 200) if isinstance(reason, str) else "")
    if kind == "edit":
        values: dict[str, Any] = {}
        for name in EDIT_FIELDS:
            if name not in obj:
                continue
            value = obj[name]
            if name == "milestones":
                if not isinstance(value, list) or not all(
                    isinstance(x, int) and not isinstance(x, bool) and x >= 1 for x in value
                ):
                    raise RequestError(
                        f"milestones must be a list of whole epochs from 1 (got {_kind_of(value)})",
                        rid,
                        action,
                    )
                values[name] = tuple(value)
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise RequestError(f"{name} must be a number (got {_kind_of(value)})", rid, action)
            if name in ("step_size", "warmup"):
                if isinstance(value, float) and not value.is_integer():
                    raise RequestError(
                        f"{name} must be a whole number (got {value!r})", rid, action
                    )
                values[name] = int(value)
            else:
                values[name] = float(value)
        unknown = sorted(set(obj) - {"type", "id", "from", "time", *EDIT_FIELDS})
        if unknown:
            # The keys are not named: nothing of a line that is no request is copied.
            other = f"{len(unknown)} other key{'s' if len(unknown) != 1 else ''}"
            raise RequestError(
                f"an edit changes only {', '.join(EDIT_FIELDS)} (got {other})", rid, action
            )
        if not values:
            raise RequestError(
                f"an edit needs at least one of {', '.join(EDIT_FIELDS)}", rid, action
            )
        return EditRequest(rid, ScheduleEdit(**values), sender)
    if kind == "withdraw":
        fields = obj.get("fields")
        if (
            not isinstance(fields, list)
            or not fields
            or not all(isinstance(x, str) and x in EDIT_FIELDS for x in fields)
        ):
            raise RequestError(
                f"a withdraw needs 'fields': a list of {', '.join(EDIT_FIELDS)}", rid, action
            )
        return WithdrawRequest(rid, tuple(dict.fromkeys(fields)), sender)
    raise RequestError(
        f"unknown request type (a {_kind_of(kind)}): expected edit, stop or withdraw", rid, action
    )


class Inbox:
    """Requests from the run's own process (the dashboard's thread), as encoded lines,
    so that they are decoded and decided exactly as control.jsonl's are."""

    def __init__(self) -> None:
        self._lines: deque[bytes] = deque()
        self._lock = threading.Lock()

    def put(self, request: Request) -> None:
        with self._lock:
            self._lines.append(encode_request(request).rstrip(b"\n"))

    def drain(self) -> list[bytes]:
        with self._lock:
            lines = list(self._lines)
            self._lines.clear()
            return lines

    def __bool__(self) -> bool:
        return bool(self._lines)
