"""StepLR's learning rate per epoch, in pure Python (no torch), for previews.

`torch.optim.lr_scheduler.StepLR` is chainable: at each `step()` it multiplies the
optimizer's current lr by gamma when its epoch counter is a non-zero multiple of
step_size. Computing it the same way, one float multiplication per drop, gives the
very same floats torch sets, where the closed form `lr0 * gamma ** (t // step_size)`
can differ in the last bits.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from steplr_tui.runfolder.params import parse_epochs


def step_lrs(lr: float, step_size: int, gamma: float, epochs: int) -> list[float]:
    """The lr in force during each epoch of a run that nobody edits."""
    return lrs_with_edits(lr, step_size, gamma, epochs, {})


@dataclass(frozen=True)
class ScheduleEdit:
    """A change to the schedule made while a run trains; None leaves a value as it is.

    It applies at an epoch boundary, after that boundary's `scheduler.step()`:
    `lr` replaces the optimizer's current lr, so the next epoch trains with it;
    `step_size` and `gamma` replace StepLR's attributes, so later drops follow them
    (StepLR still decays when its epoch counter is a multiple of step_size);
    `milestones` replaces a MultiStepLR's (increasing epochs), and `warmup` the
    length of a SequentialLR's LinearLR/ConstantLR warmup while it has not ended.
    """

    lr: float | None = None
    step_size: int | None = None
    gamma: float | None = None
    milestones: tuple[int, ...] | None = None
    warmup: int | None = None

    def __post_init__(self) -> None:
        if self.milestones is not None and not isinstance(self.milestones, tuple):
            object.__setattr__(self, "milestones", tuple(self.milestones))

    def __bool__(self) -> bool:
        return any(v is not None for v in vars(self).values())

    def merged(self, later: ScheduleEdit) -> ScheduleEdit:
        """This edit with `later`'s values on top (two edits before one boundary)."""
        return ScheduleEdit(
            **{k: (v if v is not None else getattr(self, k)) for k, v in vars(later).items()}
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            k: (list(v) if isinstance(v, tuple) else v)
            for k, v in vars(self).items()
            if v is not None
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> ScheduleEdit:
        """From a record's JSON; anything malformed is ignored rather than trusted."""

        def number(key: str, kind: type) -> Any:
            value = data.get(key)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return None
            return kind(value) if value > 0 else None

        raw = data.get("milestones")
        milestones = None
        if isinstance(raw, list) and all(
            isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in raw
        ):
            milestones = tuple(raw)
        return cls(
            number("lr", float),
            number("step_size", int),
            number("gamma", float),
            milestones,
            number("warmup", int),
        )

    def describe(self) -> str:
        parts = []
        if self.lr is not None:
            parts.append(f"lr {format_lr(self.lr)}")
        if self.step_size is not None:
            parts.append(f"step_size {self.step_size}")
        if self.gamma is not None:
            parts.append(f"gamma {self.gamma:g}")
        if self.milestones is not None:
            parts.append(f"milestones {','.join(str(m) for m in self.milestones)}")
        if self.warmup is not None:
            parts.append(f"warmup {self.warmup}")
        return ", ".join(parts)


def parse_milestones(text: str, who: str = "milestones") -> tuple[int, ...]:
    """'4,6' -> (4, 6) for an edit or a flag, where an empty list is refused; raises
    ValueError naming the rule (the fields' own, `params.parse_epochs`)."""
    values = parse_epochs(text.strip(), who)
    if not values:
        raise ValueError(
            f"{who} must be whole epochs from 1, separated by commas, like 4,6 (got {text!r:.30})"
        )
    return values


def lrs_with_edits(
    lr: float,
    step_size: int,
    gamma: float,
    epochs: int,
    edits: Mapping[int, ScheduleEdit],
) -> list[float]:
    """The lr of each epoch when `edits[k]` is applied after epoch k (1-based) ends.

    The same chain of float operations torch performs: at each boundary StepLR
    multiplies the current lr by gamma when its counter is a multiple of
    step_size, then the edit (if any) replaces lr, step_size and gamma.
    """
    lrs: list[float] = []
    current, size, factor = lr, step_size, gamma
    for t in range(epochs):
        if t > 0:
            if t % size == 0:
                current = current * factor
            edit = edits.get(t)
            if edit:
                current = edit.lr if edit.lr is not None else current
                size = edit.step_size if edit.step_size is not None else size
                factor = edit.gamma if edit.gamma is not None else factor
        lrs.append(current)
    return lrs


def kind_lrs(
    kind: str,
    lr: float,
    step_size: int,
    gamma: float,
    epochs: int,
    milestones: tuple[int, ...] = (),
    warmup: int = 1,
) -> list[float]:
    """The lr of each epoch for the built-in trainer's `--scheduler` kinds, in pure Python
    with torch's own chain of float operations (tests check them against torch, bit for
    bit): step, multistep, warmup-step, cosine. plateau has no plan ([]): it follows
    the test accuracy."""
    if kind == "step":
        return step_lrs(lr, step_size, gamma, epochs)
    if kind == "plateau":
        return []
    out: list[float] = []
    if kind == "multistep":
        counts: dict[int, int] = {}
        for m in milestones or range(step_size, epochs, step_size):
            counts[m] = counts.get(m, 0) + 1
        current = lr
        for t in range(epochs):
            if t in counts:
                current = current * gamma ** counts[t]
            out.append(current)
        return out
    if kind == "cosine":  # CosineAnnealingLR(T_max=epochs, eta_min=0): its recursive form
        current, t_max, eta = lr, epochs, 0.0
        for t in range(epochs):
            if t > 0:
                if (t - 1 - t_max) % (2 * t_max) == 0:
                    current = current + (lr - eta) * (1 - math.cos(math.pi / t_max)) / 2
                else:
                    current = (1 + math.cos(math.pi * t / t_max)) / (
                        1 + math.cos(math.pi * (t - 1) / t_max)
                    ) * (current - eta) + eta
            out.append(current)
        return out
    if kind == "warmup-step":  # SequentialLR(LinearLR(0.1, 1.0, warmup), StepLR), [warmup]
        start, end = 0.1, 1.0
        current = lr * start
        for t in range(epochs):
            if 0 < t < warmup:
                current = current * (
                    1.0 + (end - start) / (warmup * start + (t - 1) * (end - start))
                )
            elif t == warmup and t > 0:
                current = lr * gamma**0  # StepLR restarts from its base lr (closed form)
            elif t > warmup and (t - warmup) % step_size == 0:
                current = current * gamma
            out.append(current)
        return out
    raise ValueError(f"unknown scheduler kind {kind!r}")


def drop_epochs(step_size: int, epochs: int) -> list[int]:
    """1-based epochs whose lr is lower than the previous epoch's (gamma < 1)."""
    return [t + 1 for t in range(step_size, epochs, step_size)]


@dataclass(frozen=True)
class SchedulePlan:
    """A planned staircase and the facts a user reads off it."""

    lrs: list[float]
    drops: list[int]

    @property
    def final_lr(self) -> float:
        return self.lrs[-1]

    def summary(self, max_listed: int = 4) -> str:
        """One short line: where the lr drops and where it ends."""
        if not self.drops:
            return f"constant lr {format_lr(self.lrs[0])}"
        final = f"final {format_lr(self.final_lr)}"
        if len(self.drops) <= max_listed:
            return f"drops at epoch {', '.join(str(e) for e in self.drops)} · {final}"
        return f"{len(self.drops)} drops from epoch {self.drops[0]} · {final}"


def plan(lr: float, step_size: int, gamma: float, epochs: int) -> SchedulePlan:
    """The planned schedule for a fresh run."""
    drops = drop_epochs(step_size, epochs) if gamma != 1.0 else []
    return SchedulePlan(step_lrs(lr, step_size, gamma, epochs), drops)


@lru_cache(maxsize=4096)
def format_lr(lr: float) -> str:
    """Compact lr text, one format everywhere: 0.05, 1e-3, 2.5e-4, 1.34e-4, '0 (underflow)'.

    Three significant digits at most; below 0.01 (or from 10,000) in scientific
    notation without a padded exponent. Remembered: a schedule has few lrs, and a
    replay's log formats one for each of its (thousand) epochs.
    """
    if lr == 0.0:
        return "0 (underflow)"
    if not math.isfinite(lr):
        return str(lr)
    digits = max(3, len(str(int(abs(lr))))) if abs(lr) < 1e4 else 3
    text = f"{lr:.{digits}g}"
    if "e" in text or abs(lr) < 1e-2:
        mantissa, _, exp = f"{lr:.2e}".partition("e")
        mantissa = mantissa.rstrip("0").rstrip(".")
        return f"{mantissa}e{int(exp)}"
    return text


def safe_log10(lr: float) -> float:
    """log10 that survives an lr that underflowed to 0 (gamma**k below the smallest float):
    anything below 1e-300 is 0 for training, and is drawn on that floor."""
    return math.log10(max(lr, 1e-300))
