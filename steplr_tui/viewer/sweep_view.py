"""What the sweep view draws, from a snapshot: plain code, no Textual, so tests check it
without a terminal and the screen only asks and draws."""

from __future__ import annotations

import math
from itertools import combinations

from steplr_tui.runfolder.schedule import format_lr
from steplr_tui.runfolder.text import plural
from steplr_tui.study.engine import TrialRow
from steplr_tui.study.report import by_scheduler
from steplr_tui.study.table import best_number, trial_cells
from steplr_tui.viewer.sweep_source import SweepSnapshot, shown_status
from steplr_tui.viewer.widgets.sweep_plots import Axis, Curve, Point

PARAM_ORDER = ("step_size", "gamma", "lr")


def axis_pairs(snapshot: SweepSnapshot) -> list[tuple[Axis, Axis]]:
    """The (x, y) pairs of searched parameters the region plot can show (`a` cycles them),
    step_size against gamma first; a sweep of one parameter: it against the accuracy."""
    searched = [d.name for d in snapshot.spec.space.searched]
    names = [n for n in PARAM_ORDER if n in searched]
    pairs = [(Axis(a, a == "lr"), Axis(b, b == "lr")) for a, b in combinations(names, 2)]
    if not pairs and names:
        pairs = [(Axis(names[0], names[0] == "lr"), Axis("accuracy"))]
    return pairs


def _value(row: TrialRow, snapshot: SweepSnapshot, axis: Axis) -> float | None:
    params = {**snapshot.spec.space.fixed, **row.params}
    if axis.name == "accuracy":
        return row.best
    value = params.get(axis.name)
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    if axis.log:
        return math.log10(value) if value > 0 else None
    return float(value)


def region_points(snapshot: SweepSnapshot, x: Axis, y: Axis) -> list[Point]:
    out = []
    for row in snapshot.rows:
        vx, vy = _value(row, snapshot, x), _value(row, snapshot, y)
        if vx is None or vy is None:
            continue
        acc = (
            row.value if row.state == "COMPLETE" else (row.best if row.state == "PRUNED" else None)
        )
        state = "RUNNING" if shown_status(snapshot, row) == "RUNNING" else row.state
        out.append(Point(row.number, vx, vy, acc, state))
    return out


def accuracy_curves(snapshot: SweepSnapshot) -> list[Curve]:
    """Every trial's objective after each epoch, as its study knows it (any box)."""
    out = []
    for row in snapshot.rows:
        if row.curve:
            span = max(row.curve)
            values = tuple(row.curve.get(e, math.nan) for e in range(1, span + 1))
            out.append(Curve(row.number, values, shown_status(snapshot, row) == "RUNNING"))
    return out


def loss_curves(snapshot: SweepSnapshot) -> list[Curve]:
    """The training loss per epoch of the trials whose run folders are on this box."""
    out = []
    for row in snapshot.rows:
        curves = snapshot.curves.get(row.number)
        if curves is not None and curves.losses:
            out.append(Curve(row.number, curves.losses, shown_status(snapshot, row) == "RUNNING"))
    return out


def epochs_span(snapshot: SweepSnapshot) -> int:
    total = snapshot.spec.fixed.get("epochs")
    seen = max((r.epochs for r in snapshot.rows), default=1)
    return max(total if isinstance(total, int) else 1, seen, 1)


def rows_cells(snapshot: SweepSnapshot, rows: list[TrialRow]) -> list[tuple[str, ...]]:
    """The table's rows; a running trial's time is its time so far, when the snapshot
    was read (the source reads one a second, so it counts up)."""
    best = best_number(snapshot.rows)
    now = snapshot.taken or None
    out = []
    for row in rows:
        out.append(trial_cells(snapshot.spec, row, best, snapshot.local.get(row.number), now))
    return out


def header_text(snapshot: SweepSnapshot) -> str:
    """'sweep-… · RUNNING · 9 of 16 trials · 3 pruned · 2 running · best 92.40% (trial 7:
    lr 1e-3 step_size 2 gamma 0.4)'."""
    spec, rows = snapshot.spec, snapshot.rows
    done = sum(1 for r in rows if r.counted)
    pruned = sum(1 for r in rows if r.state == "PRUNED")
    running = sum(1 for r in rows if shown_status(snapshot, r) == "RUNNING")
    planned = spec.trials_planned
    count = (
        f"{done} of {plural(planned, 'trial')}"
        if done <= planned
        else f"{plural(done, 'trial')} ({planned} planned)"
    )
    parts = [spec.name, snapshot.state.status.value, count]
    if pruned:
        parts.append(f"{pruned} pruned")
    if running:
        parts.append(f"{running} running")
    best = best_number(rows)
    if best is not None:
        row = next(r for r in rows if r.number == best)
        params = {**spec.space.fixed, **row.params}
        what = (
            f"lr {format_lr(float(params['lr']))} step_size {params['step_size']} "
            f"gamma {float(params['gamma']):.3g}"
        )
        if "scheduler" in params:
            what = f"{params['scheduler']} {what}"
        parts.append(f"best {row.value:.2f}% (trial {best}: {what})")
        ranking = by_scheduler(spec, rows)
        if len(ranking) > 1:  # the winning kind, and by how much
            parts.append(ranking[0])
    if snapshot.error:
        parts.append(f"⚠ {snapshot.error}")
    if snapshot.note:
        parts.append(snapshot.note)
    return " · ".join(parts)


def accuracy_subtitle(snapshot: SweepSnapshot) -> str:
    best = best_number(snapshot.rows)
    if best is None:
        return "after each epoch"
    row = next(r for r in snapshot.rows if r.number == best)
    return f"best {row.value:.2f}% (trial {best}) · {plural(len(snapshot.rows), 'trial')}"


def loss_subtitle(snapshot: SweepSnapshot) -> str:
    """'12 trials on this box' (the others' losses stay on their boxes)."""
    local, total = len(snapshot.curves), len(snapshot.rows)
    if local < total:
        return f"{local} of {plural(total, 'trial')} on this box"
    return plural(total, "trial")
