"""A sweep's search space over lr, step_size and gamma, in the fields' own rules.

Each dimension is written as text, the way a flag gives it:

- `0.1`: one value (the dimension is fixed);
- `0.1,0.3,0.5`: a list of values to choose from;
- `0.5:0.95`: every value in a range (for step_size, every whole number in it);
- `1e-4:1e-1:log`: a range sampled on a log scale.

Every value and bound is checked by the field's rule (`gamma must be a number in
(0, 1]`), so a sweep can never ask for a run the dashboard would refuse. Plain
Python: the study turns a `Space` into Optuna's distributions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from steplr_tui.runfolder.params import SCHEDULER_KINDS, SPECS, FieldError

DIMENSIONS = ("lr", "step_size", "gamma")
MAX_CHOICES = 64
SIGNIFICANT = 3  # digits of a sampled float: the sweep table's precision


class SpaceError(ValueError):
    """A search space that cannot be swept; the message names the problem and the fix."""


@dataclass(frozen=True)
class Dimension:
    """One parameter's values: a list to choose from, or a range (log or not)."""

    name: str
    kind: Literal["choice", "range", "log"]
    values: tuple[float | int, ...] = ()
    low: float | int | None = None
    high: float | int | None = None

    @property
    def is_int(self) -> bool:
        return SPECS[self.name].kind == "int"

    @property
    def fixed(self) -> bool:
        """One value only: nothing to search."""
        return self.kind == "choice" and len(self.values) == 1

    def describe(self) -> str:
        """The dimension as it was written: '0.1,0.3', '1e-4:1e-1:log'."""
        if self.kind == "choice":
            return ",".join(_text(v) for v in self.values)
        return f"{_text(self.low)}:{_text(self.high)}" + (":log" if self.kind == "log" else "")

    def as_dict(self) -> dict[str, Any]:
        if self.kind == "choice":
            return {"kind": "choice", "values": list(self.values)}
        return {"kind": self.kind, "low": self.low, "high": self.high}

    @classmethod
    def from_dict(cls, name: str, data: Mapping[str, Any]) -> Dimension:
        """From sweep.json or a study's attributes; raises SpaceError, checked as text is."""
        kind = data.get("kind")
        if kind == "choice" and isinstance(data.get("values"), list):
            text = ",".join(_text(v) for v in data["values"])
        elif kind in ("range", "log"):
            text = f"{_text(data.get('low'))}:{_text(data.get('high'))}"
            text += ":log" if kind == "log" else ""
        else:
            raise SpaceError(f"{name}: not a dimension of a search space ({dict(data)!r:.80})")
        return parse_dimension(name, text)

    def grid(self) -> list[float | int] | None:
        """Every value, where there are finitely many (a list, or a range of whole numbers)."""
        if self.kind == "choice":
            return list(self.values)
        if self.kind == "range" and self.is_int:
            return list(range(int(self.low), int(self.high) + 1))  # type: ignore[arg-type]
        return None

    def contains(self, value: Any) -> bool:
        if self.kind == "choice":
            return value in self.values
        return self.low <= value <= self.high  # type: ignore[operator]

    def run_value(self, value: Any) -> Any:
        """The value a trial runs with: a float sampled from a range at the precision the
        sweep's table shows (3 significant digits: 0.439, not 0.4387138442986005), so its
        run, its dashboard and every table show the same number. More digits where the
        range is too narrow for that; listed values and whole numbers as they are."""
        if self.kind == "choice" or self.is_int or not isinstance(value, float):
            return value
        if value == 0.0 or not math.isfinite(value):
            return value
        width = float(self.high) - float(self.low)  # type: ignore[arg-type]
        for digits in range(SIGNIFICANT, 17):
            step = 10.0 ** (math.floor(math.log10(abs(value))) - digits + 1)
            rounded = float(f"{value:.{digits}g}")
            if step * 100 <= width and self.contains(rounded):
                return rounded
        return value


def _text(value: Any) -> str:
    if isinstance(value, float):
        return repr(value)
    return str(value)


def parse_dimension(name: str, text: str) -> Dimension:
    """One dimension from its text (see the module docstring); raises SpaceError."""
    spec = SPECS[name]
    flag = spec.flag
    raw = text.strip()
    if not raw:
        raise SpaceError(f"{flag} is empty: give a value, a list (0.1,0.3) or a range (0.1:0.9)")
    if ":" in raw:
        parts = [p.strip() for p in raw.split(":")]
        log = len(parts) == 3 and parts[2].lower() == "log"
        if len(parts) not in (2, 3) or (len(parts) == 3 and not log):
            raise SpaceError(
                f"{flag} {raw!r}: a range is LOW:HIGH, or LOW:HIGH:log for a log scale"
            )
        low, high = (_value(spec, p, flag) for p in parts[:2])
        if not low < high:
            raise SpaceError(f"{flag} {raw!r}: the range's low end must be below its high end")
        return Dimension(name, "log" if log else "range", low=low, high=high)
    values = []
    for part in raw.split(","):
        if not part.strip():
            raise SpaceError(f"{flag} {raw!r}: an empty item in the list")
        value = _value(spec, part, flag)
        if value in values:
            raise SpaceError(f"{flag} {raw!r}: {_text(value)} is listed twice")
        values.append(value)
    if len(values) > MAX_CHOICES:
        raise SpaceError(f"{flag}: at most {MAX_CHOICES} values in a list (got {len(values)})")
    return Dimension(name, "choice", values=tuple(values))


def _value(spec, text: str, flag: str) -> float | int:
    try:
        return spec.parse(text, who=flag)
    except FieldError as exc:
        raise SpaceError(str(exc)) from exc


@dataclass(frozen=True)
class Space:
    """lr, step_size and gamma: each searched or fixed."""

    dimensions: tuple[Dimension, ...]

    def __getitem__(self, name: str) -> Dimension:
        return next(d for d in self.dimensions if d.name == name)

    def run_values(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """A trial's parameters as its run uses them (see Dimension.run_value)."""
        names = {d.name: d for d in self.dimensions}
        return {k: names[k].run_value(v) if k in names else v for k, v in params.items()}

    @property
    def searched(self) -> tuple[Dimension, ...]:
        return tuple(d for d in self.dimensions if not d.fixed)

    @property
    def fixed(self) -> dict[str, float | int]:
        return {d.name: d.values[0] for d in self.dimensions if d.fixed}

    @property
    def grid(self) -> dict[str, list[float | int]] | None:
        """The grid of every searched value, where every searched dimension is finite."""
        grids = {d.name: d.grid() for d in self.searched}
        if any(g is None for g in grids.values()):
            return None
        return grids  # type: ignore[return-value]

    @property
    def grid_size(self) -> int | None:
        grid = self.grid
        return math.prod(len(v) for v in grid.values()) if grid is not None else None

    def describe(self) -> str:
        """'lr 1e-4:1e-1:log · step_size 1,2,3 · gamma 0.1' (as the flags wrote it)."""
        return " · ".join(f"{d.name} {d.describe()}" for d in self.dimensions)

    def as_dict(self) -> dict[str, Any]:
        return {d.name: d.as_dict() for d in self.dimensions}

    @classmethod
    def from_dict(cls, data: Any) -> Space:
        if not isinstance(data, Mapping):
            raise SpaceError("a search space must be an object of lr, step_size and gamma")
        dims = []
        for name in DIMENSIONS:
            if name not in data or not isinstance(data[name], Mapping):
                raise SpaceError(f"the search space has no {name}")
            dims.append(Dimension.from_dict(name, data[name]))
        return cls(tuple(dims))

    def contains(self, params: Mapping[str, Any]) -> bool:
        return all(d.contains(params.get(d.name)) for d in self.dimensions)


def parse_schedulers(text: str) -> tuple[str, ...]:
    """'step,cosine' -> ('step', 'cosine'): the built-in schedulers a sweep compares."""
    kinds = tuple(k.strip().lower() for k in text.split(","))
    if not all(kinds):
        raise SpaceError(f"--scheduler {text!r}: an empty item in the list")
    check_schedulers(kinds)
    return kinds


def check_schedulers(kinds: tuple[str, ...]) -> None:
    """Each one of SCHEDULER_KINDS, each once (the flag's, the form's and a spec's rule)."""
    if any(k not in SCHEDULER_KINDS for k in kinds) or len(set(kinds)) != len(kinds):
        raise SpaceError(
            f"--scheduler takes a list of {', '.join(SCHEDULER_KINDS)}, each once "
            f"(got {','.join(kinds)})"
        )


def parse_space(
    texts: Mapping[str, str | None], defaults: Mapping[str, Any], others: bool = False
) -> Space:
    """The space the flags give; a dimension not given is fixed at its default.
    Raises SpaceError for a bad dimension, or a space with nothing to search (`others`:
    the sweep searches something else, the schedulers, so this one may be all fixed)."""
    dims = []
    for name in DIMENSIONS:
        text = texts.get(name)
        dims.append(
            parse_dimension(name, text)
            if text is not None
            else parse_dimension(name, _text(defaults[name]))
        )
    space = Space(tuple(dims))
    if not space.searched and not others:
        raise SpaceError(
            "the search space is empty: give a list or a range for at least one of "
            "--lr, --step-size and --gamma (for example --gamma 0.1:0.9 or --step-size 1,2,3)"
        )
    return space


def step_notes(step: Dimension, epochs: Any) -> list[str]:
    """What a user should know about step_size against the epochs: a step_size that is
    never reached leaves the lr where it started, and gamma without effect."""
    if not isinstance(epochs, int) or isinstance(epochs, bool):
        return []
    values = step.grid() or []
    smallest = step.values[0] if step.fixed else (min(values) if values else step.low)
    if smallest is not None and smallest >= epochs:
        return [
            f"note: with {epochs} epochs, no step_size here ({step.describe()}) ever drops "
            "the lr, so gamma has no effect: give step_sizes below the epochs"
        ]
    never = [v for v in values if v >= epochs]
    if never:
        shown = ",".join(str(v) for v in never)
        return [f"note: step_size {shown} never drops the lr within {epochs} epochs"]
    return []
