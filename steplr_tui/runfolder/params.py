"""Training parameters, their rules, and the one parser that flags and fields share.

Every parameter is described once, by a `FieldSpec`. The command line and the
parameter panel both parse text through it, so a rule can't differ between them
and every message names the parameter and the rule it broke.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass, fields, replace
from decimal import Decimal
from typing import Any, Literal

OPTIMIZERS = ("adam", "sgd")
DEVICES = ("auto", "cpu", "cuda", "mps")
DATASETS = ("auto", "mnist", "fashion-mnist", "kmnist", "sample")
MODELS = ("linear", "mlp", "cnn")
# The built-in trainer's schedulers: StepLR (the seed's), and its alternatives.
SCHEDULER_KINDS = ("step", "multistep", "warmup-step", "cosine", "plateau")
SCHEDULER_HELP = (
    "step: StepLR(step_size, gamma); multistep: MultiStepLR(milestones, gamma); "
    "warmup-step: LinearLR from lr/10 over --warmup epochs, then StepLR; cosine: "
    "CosineAnnealingLR over the run; plateau: ReduceLROnPlateau on the test accuracy "
    "(factor gamma, patience step_size)"
)

# Longer input is refused before any conversion: int() of a huge digit string is slow
# and Python refuses more than 4300 digits anyway.
MAX_TEXT = 40

_INT_RE = re.compile(r"[+-]?[0-9]+")
# ASCII digits only: str.isdigit() and int() accept other scripts' digits and
# underscores, which would let Arabic-Indic digits or '1_0' through.
_FLOAT_RE = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")


class FieldError(ValueError):
    """A value that breaks its parameter's rule; the message says which rule."""


@dataclass(frozen=True)
class FieldSpec:
    """One parameter: its name, flag, label, type and allowed range."""

    name: str
    label: str
    kind: Literal["float", "int", "choice", "epochs"]  # epochs: a list, like 4,6
    help: str
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False
    choices: tuple[str, ...] = ()
    auto_zero: bool = False  # "auto" means 0 (an int field whose 0 is "the default")

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def rule(self) -> str:
        """The rule in words, as every message about this parameter states it."""
        if self.kind == "choice":
            return "one of " + ", ".join(self.choices)
        if self.kind == "epochs":
            return "increasing whole epochs from 1, like 4,6 (empty: every step_size epochs)"
        noun = "a number" if self.kind == "float" else "a whole number"
        lo, hi = _fmt_bound(self.lo), _fmt_bound(self.hi)
        if self.auto_zero:
            return f"auto or {noun} from 1 to {hi}"
        if self.lo is not None and self.hi is not None:
            if self.kind == "int":
                return f"{noun} from {lo} to {hi}"
            left = "(" if self.lo_open else "["
            right = ")" if self.hi_open else "]"
            return f"{noun} in {left}{lo}, {hi}{right}"
        if self.lo is not None:
            return f"{noun} {'>' if self.lo_open else '>='} {lo}"
        return noun

    def parse(self, text: str, who: str | None = None) -> Any:
        """Turn user text into a value, or raise FieldError naming the rule.

        `who` names the parameter in the message (the flag, on the command line).
        """
        who = who or self.label
        raw = text.strip()
        if self.kind == "epochs":
            return parse_epochs(raw, who)
        if not raw:
            raise FieldError(f"{who} is empty: enter {self.rule}")
        if len(raw) > MAX_TEXT:
            raise FieldError(f"{who} is too long: enter {self.rule}")
        if self.kind == "choice":
            value = raw.lower()
            if value not in self.choices:
                raise FieldError(f"{who} must be {self.rule} (got {_show(raw)})")
            return value
        if self.auto_zero and raw.lower() == "auto":
            return 0
        if self.kind == "int":
            if not _INT_RE.fullmatch(raw):
                raise FieldError(f"{who} must be {self.rule} (got {_show(raw)})")
            number: float | int = int(raw)
        else:
            if not _FLOAT_RE.fullmatch(raw):
                raise FieldError(f"{who} must be {self.rule} (got {_show(raw)})")
            number = float(raw)
            if not math.isfinite(number):
                raise FieldError(f"{who} must be {self.rule} (got {_show(raw)}, too large)")
            if number == 0.0:
                number = 0.0  # '-0' is zero; never carry a negative zero into a rule check.
        if not self._in_range(number):
            raise FieldError(f"{who} must be {self.rule} (got {_show(raw)})")
        return number

    def _in_range(self, number: float) -> bool:
        if self.lo is not None and (number <= self.lo if self.lo_open else number < self.lo):
            return False
        return not (
            self.hi is not None and (number >= self.hi if self.hi_open else number > self.hi)
        )

    def check_value(self, value: Any, who: str | None = None) -> None:
        """Check a value that came as a value, not as text (a config from code, a
        request in control.jsonl); raise FieldError with the same rule as the fields."""
        who = who or self.label
        if self.kind == "choice":
            self.parse(str(value), who)
            return
        if self.kind == "epochs":
            if not isinstance(value, (list, tuple)):
                raise FieldError(f"{who} must be {self.rule} (got {value!r:.30})")
            self.parse(",".join(str(v) for v in value), who)
            return
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise FieldError(f"{who} must be {self.rule} (got {value!r})")
        if self.kind == "int" and not float(value).is_integer():
            raise FieldError(f"{who} must be {self.rule} (got {value!r})")
        if self.kind == "float" and not math.isfinite(value):
            raise FieldError(f"{who} must be {self.rule} (got {value!r})")
        if not self._in_range(value):
            raise FieldError(f"{who} must be {self.rule} (got {value!r})")

    def format(self, value: Any) -> str:
        """The text a field shows for a value (repr keeps floats exact and short)."""
        if self.auto_zero and value == 0:
            return "auto"
        if self.kind == "epochs":
            return ",".join(str(v) for v in value)
        if self.kind == "float":
            return repr(float(value))
        return str(value)

    def nudge(self, text: str, direction: int) -> str | None:
        """The text one Up (+1) or Down (-1) step away, or None if there is no valid step.

        Integers move by one. Floats move by one unit of their leading digit, so
        0.001 -> 0.002 -> ... -> 0.009 -> 0.01, and down from 0.001 to 0.0009:
        the steps a person would take by hand across decades.
        """
        if self.kind in ("choice", "epochs"):
            return None
        try:
            value = self.parse(text)
        except FieldError:
            return None
        if self.kind == "int":
            candidate: float | int = value + direction
        else:
            candidate = _decade_step(value, direction)
        try:
            self.parse(self.format(candidate))
        except FieldError:
            return None
        return self.format(candidate)


def _decade_step(value: float, direction: int) -> float:
    if value == 0.0:
        return 0.1 if direction > 0 else 0.0
    d = Decimal(repr(value))
    unit = Decimal(1).scaleb(d.adjusted())
    if direction < 0 and d - unit <= 0:
        unit = unit.scaleb(-1)
    return float(d + unit if direction > 0 else d - unit)


def _fmt_bound(bound: float | None) -> str:
    if bound is None:
        return ""
    return str(int(bound)) if float(bound).is_integer() else repr(bound)


def parse_epochs(raw: str, who: str) -> tuple[int, ...]:
    """'4,6' -> (4, 6); '' -> () (every step_size epochs); the one rule for milestones."""
    if len(raw) > 200:
        raise FieldError(f"{who} is too long: list at most a few dozen epochs, like 4,6")
    parts = [p.strip() for p in raw.split(",") if p.strip()]  # '4,' while typing '4,6'.
    if any(not _INT_RE.fullmatch(p) or int(p) < 1 or int(p) > 1_000_000 for p in parts):
        raise FieldError(
            f"{who} must be whole epochs from 1, separated by commas, like 4,6 (got {_show(raw)})"
        )
    values = tuple(int(p) for p in parts)
    check_milestones(values, who)
    return values


def check_milestones(values: tuple[int, ...], who: str = "milestones") -> None:
    """Increasing, each epoch once (a ValueError, as FieldError is, naming the fix)."""
    if any(b <= a for a, b in itertools.pairwise(values)):
        raise FieldError(
            f"{who} must be increasing (got {','.join(str(v) for v in values)}): "
            "list each epoch once, in order, like 4,6"
        )


def _show(raw: str) -> str:
    return repr(raw if len(raw) <= 20 else raw[:20] + "…")


SPECS: dict[str, FieldSpec] = {
    s.name: s
    for s in (
        # Capped well below float32's largest value, which the optimizer would refuse.
        FieldSpec("lr", "lr", "float", "initial learning rate", lo=0.0, hi=1000.0, lo_open=True),
        FieldSpec("step_size", "step_size", "int", "epochs between LR drops", lo=1, hi=1_000_000),
        FieldSpec(
            "gamma", "gamma", "float", "factor applied at each drop", lo=0.0, hi=1.0, lo_open=True
        ),
        FieldSpec("epochs", "epochs", "int", "epochs to train", lo=1, hi=1000),
        FieldSpec("batch_size", "batch size", "int", "training batch size", lo=1, hi=60000),
        FieldSpec("optimizer", "optimizer", "choice", "optimizer", choices=OPTIMIZERS),
        FieldSpec(
            "momentum", "momentum", "float", "SGD momentum (SGD only)", lo=0.0, hi=1.0, hi_open=True
        ),
        FieldSpec("model", "model", "choice", "model to train on MNIST", choices=MODELS),
        FieldSpec("seed", "seed", "int", "random seed", lo=0, hi=2**63 - 1),
        FieldSpec(
            "threads",
            "threads",
            "int",
            "torch's intra-op threads on the CPU (auto: torch's default)",
            lo=0,
            hi=256,
            auto_zero=True,
        ),
        FieldSpec(
            "device", "device", "choice", "auto picks a GPU when there is one", choices=DEVICES
        ),
        FieldSpec(
            "dataset",
            "dataset",
            "choice",
            "auto is MNIST, falling back to the bundled sample",
            choices=DATASETS,
        ),
    )
}


# The scheduler's own fields: the dashboard's panel shows them (milestones only for
# MultiStepLR, warmup only for a warmup); the command line has --scheduler, --milestones
# and --warmup of its own (cli/options.py), checked by the same rules.
SCHEDULE_SPECS: dict[str, FieldSpec] = {
    s.name: s
    for s in (
        FieldSpec("scheduler", "scheduler", "choice", SCHEDULER_HELP, choices=SCHEDULER_KINDS),
        FieldSpec("milestones", "milestones", "epochs", "MultiStepLR's epochs to decay after"),
        FieldSpec("warmup", "warmup", "int", "epochs of LinearLR warmup", lo=1, hi=1000),
    )
}

# Every field of the dashboard's parameter panel, in its order.
FIELD_SPECS: dict[str, FieldSpec] = {
    name: SPECS.get(name) or SCHEDULE_SPECS[name]
    for name in (
        "lr", "step_size", "gamma", "scheduler", "milestones", "warmup", "epochs",
        "batch_size", "optimizer", "momentum", "model", "seed", "threads", "device", "dataset",
    )
}  # fmt: skip


@dataclass(frozen=True)
class TrainConfig:
    """Everything a run needs. Defaults are the reference run (Adam, lr 1e-3, StepLR 2/0.1)."""

    lr: float = 0.001
    step_size: int = 2
    gamma: float = 0.1
    epochs: int = 5
    batch_size: int = 64
    optimizer: str = "adam"
    momentum: float = 0.9
    model: str = "linear"
    seed: int = 0
    threads: int = 0  # 0: torch's default
    device: str = "auto"
    dataset: str = "auto"
    data_dir: str | None = None
    download: bool = True
    # The scheduler (SCHEDULER_KINDS); milestones for multistep (empty: every
    # step_size epochs), warmup epochs for warmup-step.
    scheduler: str = "step"
    milestones: tuple[int, ...] = ()
    warmup: int = 1

    def __post_init__(self) -> None:
        if not isinstance(self.milestones, tuple):
            object.__setattr__(self, "milestones", tuple(self.milestones))

    def validated(self) -> TrainConfig:
        """Re-check every rule (a config may come from code, not from text); raise FieldError."""
        for spec in SPECS.values():
            spec.check_value(getattr(self, spec.name))
        if self.scheduler not in SCHEDULER_KINDS:
            raise FieldError(
                f"scheduler must be one of {', '.join(SCHEDULER_KINDS)} "
                f"(got {self.scheduler!r:.30})"
            )
        values = self.milestones
        if any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in values) or any(
            b <= a for a, b in itertools.pairwise(values)
        ):
            raise FieldError(
                f"milestones must be increasing whole epochs from 1, like 4,6 (got "
                f"{','.join(str(v) for v in values)})"
            )
        if isinstance(self.warmup, bool) or not isinstance(self.warmup, int) or self.warmup < 1:
            raise FieldError(
                f"warmup must be a whole number of epochs from 1 (got {self.warmup!r})"
            )
        problem = warmup_problem(self.warmup, self.epochs)
        if self.scheduler == "warmup-step" and problem:
            raise FieldError(problem)
        return self

    def with_values(self, **values: Any) -> TrainConfig:
        return replace(self, **values)

    def as_dict(self) -> dict[str, Any]:
        """Every parameter; the scheduler's only when it is not the default StepLR (a
        StepLR run's record stays as it always was)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        if self.scheduler == "step":
            for name in ("scheduler", "milestones", "warmup"):
                del out[name]
        else:
            out["milestones"] = list(self.milestones)
        return out


def parse_values(texts: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """Parse field texts; returns (values, errors), each keyed by parameter name."""
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name, text in texts.items():
        try:
            values[name] = FIELD_SPECS[name].parse(text)
        except FieldError as exc:
            errors[name] = str(exc)
    # A warmup must end before the run does: the built-in warmup-step's, and a script's
    # (a scheduler of another class, a SequentialLR); the other built-in kinds have none.
    problem = warmup_problem(values.get("warmup"), values.get("epochs"))
    kind = values.get("scheduler")
    if problem and (kind == "warmup-step" or kind not in SCHEDULER_KINDS):
        errors["warmup"] = problem
        del values["warmup"]
    return values, errors


def warmup_problem(warmup: int | None, epochs: int | None) -> str | None:
    """Why a warmup of `warmup` epochs can't be a run's of `epochs` (None: it can)."""
    if warmup is None or epochs is None or warmup < epochs:
        return None
    return (
        f"warmup {warmup} is longer than the run ({epochs} epochs): give a warmup shorter "
        f"than {epochs}"
    )
