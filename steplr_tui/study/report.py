"""What a sweep leaves when it ends: its best trial, that trial's PyTorch snippet (the one
`export` writes), and `trials.csv`. Plain Python, no Optuna (the rows come from
`engine.read_trials`)."""

from __future__ import annotations

import contextlib
import csv
import io
from pathlib import Path
from typing import Any

from steplr_tui.runfolder.export import pytorch_snippet, run_snippet
from steplr_tui.runfolder.files import write_atomic
from steplr_tui.runfolder.reader import RunNotFound, read_run
from steplr_tui.study.engine import TrialRow
from steplr_tui.study.spec import BEST_FILE, TRIALS_CSV, SweepSpec

CSV_COLUMNS = (
    "trial", "state", "status", "lr", "step_size", "gamma", "epochs", "peak", "last",
    "seconds", "run", "host", "reason", "scheduler",
)  # fmt: skip


def best_trial(rows: list[TrialRow]) -> TrialRow | None:
    done = [r for r in rows if r.state == "COMPLETE" and r.value is not None]
    return max(done, key=lambda r: r.value) if done else None  # type: ignore[arg-type,return-value]


def best_params(spec: SweepSpec, row: TrialRow) -> dict[str, Any]:
    """A trial's lr, step_size and gamma as its run used them."""
    return {**spec.space.fixed, **spec.space.run_values(row.params)}


def best_snippet(spec: SweepSpec, row: TrialRow) -> str:
    """The PyTorch snippet today's export writes for the best trial: from its run folder
    where it is on this box (its optimizer as it ran, and any live edit), else from its
    parameters."""
    head = (
        f"# steplr-tui sweep {spec.name}: best of its trials, trial {row.number} "
        f"({spec.objective} {row.value:.2f})\n"
    )
    folder = Path(row.run_folder) if row.run_folder else None
    if folder is not None and folder.is_dir():
        with contextlib.suppress(RunNotFound):
            return head + run_snippet(read_run(folder))
    config = {**spec.fixed, **best_params(spec, row)}
    if spec.script:
        config["kind"] = "script"
    return head + pytorch_snippet(config, {})


def trials_csv(spec: SweepSpec, rows: list[TrialRow]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in sorted(rows, key=lambda r: r.number):
        params = best_params(spec, r)
        writer.writerow(
            [
                r.number,
                r.state,
                r.status,
                *(params.get(k, "") for k in ("lr", "step_size", "gamma")),
                r.epochs,
                _cell(r.best),
                _cell(r.last),
                _cell(r.seconds),
                r.run_folder,
                r.host,
                r.reason,
                params.get("scheduler", "step"),
            ]
        )
    return out.getvalue()


def by_scheduler(spec: SweepSpec, rows: list[TrialRow]) -> list[str]:
    """Which scheduler wins here, and by how much: one line per kind, the best first,
    'cosine: best 92.10% · median 91.40% of 4 · +0.80 over step'. Empty when the sweep
    does not compare schedulers."""
    if len(spec.schedulers) < 2:
        return []
    results: dict[str, list[float]] = {kind: [] for kind in spec.schedulers}
    for r in rows:
        kind = r.params.get("scheduler", spec.schedulers[0])
        if r.state == "COMPLETE" and r.value is not None and kind in results:
            results[kind].append(float(r.value))
    best = {k: max(v) for k, v in results.items() if v}
    order = sorted(best, key=lambda k: best[k], reverse=True)
    lines = []
    for i, kind in enumerate(order):
        values = sorted(results[kind])
        median = (
            values[len(values) // 2]
            if len(values) % 2
            else sum(values[len(values) // 2 - 1 : len(values) // 2 + 1]) / 2
        )
        if i == 0 and len(order) > 1:
            gap = f" · +{best[kind] - best[order[1]]:.2f} over {order[1]}"
        elif i > 0:
            gap = f" · {best[kind] - best[order[0]]:+.2f} behind {order[0]}"
        else:
            gap = ""
        lines.append(f"{kind}: best {best[kind]:.2f}% · median {median:.2f}% of {len(values)}{gap}")
    lines += [f"{kind}: no finished trial yet" for kind in spec.schedulers if kind not in best]
    return lines


def _cell(value: float | None) -> str:
    return "" if value is None else repr(round(value, 6))


def write_reports(folder: Path, spec: SweepSpec, rows: list[TrialRow]) -> None:
    with contextlib.suppress(OSError):
        write_atomic(folder / TRIALS_CSV, trials_csv(spec, rows).encode())
        best = best_trial(rows)
        if best is not None:
            write_atomic(folder / BEST_FILE, best_snippet(spec, best).encode())
