"""The JSON of the run folder's lines: strict JSON (NaN and infinities are null), batch
losses as base64 float32, and typed access to a decoded line that names what is wrong."""

from __future__ import annotations

import base64
import json
import math
import sys
from array import array
from collections.abc import Mapping
from typing import Any

from steplr_tui.runfolder.schedule import ScheduleEdit


class FormatError(ValueError):
    """A line that is JSON but not an event or request of this format; says what is wrong."""


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


class _Fields:
    """Typed access to a decoded JSON object; a wrong or missing value raises FormatError."""

    def __init__(self, obj: Mapping[str, Any], kind: str) -> None:
        self.obj = obj
        self.kind = kind

    def _fail(self, key: str, want: str) -> FormatError:
        return FormatError(f"a '{self.kind}' line needs '{key}' as {want}")

    def int(self, key: str, default: int | None = None) -> int:
        value = self.obj.get(key, default)
        if type(value) is int:  # as JSON gives it (a replay reads thousands)
            return value
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._fail(key, "a whole number")
        return value

    def float(self, key: str, default: float | None = None) -> float:
        value = self.obj.get(key, default)
        if type(value) is float:
            return value
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
