"""Earlier runs drawn faintly behind the current one: what an overlay holds and its name.

An overlay is a finished (or stopped) run reduced to its per-epoch series, from a
run record or from the run just watched. Plain Python, no Textual, no torch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from steplr_tui.runfolder import EpochEnd
from steplr_tui.runfolder.reader import RunInfo
from steplr_tui.runfolder.runs_table import describe_params, short_name
from steplr_tui.runfolder.schedule import ScheduleEdit

MAX_OVERLAYS = 4


@dataclass(frozen=True)
class Overlay:
    """One earlier run's per-epoch lr, loss and accuracy (index i is epoch i + 1)."""

    key: str
    name: str
    label: str
    lrs: tuple[float, ...]
    losses: tuple[float, ...]
    accs: tuple[float, ...]
    steps_per_epoch: int = 0  # 0: unknown
    edited: bool = False  # steered while it trained

    @classmethod
    def from_run(cls, run: RunInfo) -> Overlay:
        metrics = sorted(run.metrics, key=lambda m: m["epoch"])

        batch = run.config.get("batch_size")
        n_train = run.meta.get("n_train")
        steps = math.ceil(n_train / batch) if _positive_ints(n_train, batch) else 0
        # A branch is drawn from its parent's epoch onward: before it, it is its parent.
        section = run.meta.get("branch")
        start = section.get("epoch") if isinstance(section, dict) else None
        start = start if _positive_ints(start) else 1

        def column(key: str) -> tuple[float, ...]:
            return tuple(_number(m.get(key)) if m["epoch"] >= start else math.nan for m in metrics)

        return cls(
            key=str(run.path),
            name=short_name(run.name),
            label=describe_params(run.config) + _branch_text(section, start),
            lrs=column("lr"),
            losses=column("train_loss"),
            accs=column("test_acc"),
            steps_per_epoch=steps,
            edited=bool(run.edits),
        )

    @classmethod
    def from_epochs(
        cls, key: str, name: str, config: Mapping[str, Any], epochs: Sequence[EpochEnd], steps: int
    ) -> Overlay:
        return cls(
            key=key,
            name=name,
            label=describe_params(config),
            lrs=tuple(e.lr for e in epochs),
            losses=tuple(e.train_loss for e in epochs),
            accs=tuple(e.test_acc for e in epochs),
            steps_per_epoch=steps,
            edited=any(e.edit for e in epochs),
        )

    def __len__(self) -> int:
        return len(self.lrs)


def _branch_text(section: Any, start: int) -> str:
    """' · e3: gamma 0.5' for a branch after epoch 3 with that edit ('' for a run)."""
    if start <= 1 or not isinstance(section, dict):
        return ""
    raw = section.get("edit")
    edit = ScheduleEdit.from_dict(raw) if isinstance(raw, dict) else ScheduleEdit()
    return f" · e{start}: {edit.describe() or 'no edit'}"


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return math.nan
    return float(value)


def _positive_ints(*values: Any) -> bool:
    return all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in values)
