"""Drawing helpers: what to plot for a line or a staircase in a pane of so many columns.

The bounded loss series itself is the run folder's (`runfolder/losses.py`): the run
keeps the same fold in its summary.
"""

from __future__ import annotations

from steplr_tui.runfolder.losses import bin_points


def line_points(xs: list[float], ys: list[float], bins: int) -> tuple[list[float], list[float]]:
    """What to draw for a line through (xs, ys) in `bins` columns: the points
    themselves when they fit, else a zig-zag through each column's min and max, so
    a run of 1000 epochs costs a redraw no more than one of 100 and its extremes stay."""
    if len(xs) <= bins:
        return list(xs), list(ys)
    d = bin_points(xs, ys, bins)
    return (
        [x for x in d.x for _ in (0, 1)],
        [v for lo, hi in zip(d.lo, d.hi, strict=True) for v in (hi, lo)],
    )


def step_points(values: list[float], bins: int, start: int = 0) -> tuple[list[float], list[float]]:
    """Points of a step line where values[i] holds from x = start+i to start+i+1.

    Neighbours with equal values merge into one step (exact: a 1000-epoch schedule
    with five phases is ten points). When more steps than `bins` columns remain,
    each column keeps its first and last level, and its highest and lowest when
    they lie between those, and the last level runs on to its end.
    """
    bins = max(bins, 1)
    steps: list[list[float]] = []  # [x0, x1, value]
    for i, value in enumerate(values, start=start):
        if steps and steps[-1][2] == value:
            steps[-1][1] = i + 1
        else:
            steps.append([i, i + 1, value])
    xs: list[float] = []
    ys: list[float] = []
    if len(steps) <= bins:
        for x0, x1, value in steps:
            xs += [x0, x1]
            ys += [value, value]
        return xs, ys
    width = len(values) / bins
    columns: list[list[list[float]]] = [[] for _ in range(bins)]
    for step in steps:
        columns[min(int((step[0] - start) / width), bins - 1)].append(step)
    for column in columns:
        if not column:
            continue
        levels = [step[2] for step in column]
        first, last = levels[0], levels[-1]
        middle = (column[0][0] + column[-1][0]) / 2
        xs.append(column[0][0])
        ys.append(first)
        # Extremes between the first and last level (a spike) get a point of their
        # own; a falling staircase needs none, which keeps plotext's work small.
        if max(levels) > max(first, last):
            xs.append(middle)
            ys.append(max(levels))
        if min(levels) < min(first, last):
            xs.append(middle)
            ys.append(min(levels))
        xs += [column[-1][0], column[-1][1]]
        ys += [last, last]
    return xs, ys
