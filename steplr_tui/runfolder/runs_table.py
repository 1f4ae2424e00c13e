"""Runs as rows of text: the runs table in the dashboard and `--list-runs` both show these.

Plain Python: no torch, no Textual. The most telling columns come first, so a
narrow terminal shows what matters and the rest scrolls.
"""

from __future__ import annotations

import re
import socket
from typing import Any

from steplr_tui.runfolder import Status
from steplr_tui.runfolder.reader import RunInfo
from steplr_tui.runfolder.schedule import format_lr
from steplr_tui.runfolder.text import format_duration

SUMMARY_COLUMNS = (
    "run",
    "status",
    "epochs",
    "best acc",
    "last acc",
    "last loss",
    "time",
    "parameters",
)
SORT_KEYS = ("newest", "best acc", "last acc", "last loss", "time")

_STAMP = re.compile(r"\d{8}-\d{6}")


def short_name(name: str) -> str:
    """A run's time stamp alone, where the parameters are shown beside it; the
    stamp is a prefix that every command taking a RUN accepts."""
    match = _STAMP.match(name)
    return match.group(0) if match else name


def describe_params(config: dict[str, Any]) -> str:
    """A run named by what distinguishes it: 'adam lr 1e-3 s2 g0.1 b64'."""
    try:
        head = f"{config['optimizer']} lr {format_lr(float(config['lr']))}"
        schedule = _schedule(config)
        if schedule is None:
            schedule = f"s{config['step_size']} g{float(config['gamma']):g}"
        text = f"{head} {schedule}"
    except (KeyError, TypeError, ValueError):
        return "unknown parameters"
    batch = config.get("batch_size")
    if isinstance(batch, int) and not isinstance(batch, bool):
        text += f" b{batch}"
    model = config.get("model")
    if isinstance(model, str) and model not in ("", "linear"):
        text += f" {model}"
    return text


def _schedule(config: dict[str, Any]) -> str | None:
    """A schedule other than StepLR in a few characters ('MultiStepLR m2,4 g0.3',
    'cosine', 'OneCycleLR'); None for StepLR (its 's2 g0.1')."""
    kind = config.get("scheduler", "step")
    if isinstance(kind, str) and kind != "step":  # the built-in trainer's --scheduler
        gamma = config.get("gamma")
        if kind == "multistep" and config.get("milestones"):
            return f"multistep m{','.join(str(m) for m in config['milestones'])} g{gamma:g}"
        return {"multistep": f"multistep s{config.get('step_size')} g{gamma:g}",
                "warmup-step": f"warmup{config.get('warmup', 1)} s{config.get('step_size')} "
                f"g{gamma:g}"}.get(kind, kind)  # fmt: skip
    recorded = config.get("scheduler_params")
    if not isinstance(recorded, dict) or recorded.get("class") in (None, "StepLR"):
        return None
    name = str(recorded["class"])
    if name == "none":
        return "no scheduler"
    if name == "SequentialLR":
        parts = recorded.get("schedulers") or []
        name = "+".join(str(p.get("class", "?")).removesuffix("LR") for p in parts) or name
    milestones = recorded.get("milestones")
    if recorded.get("class") == "MultiStepLR" and isinstance(milestones, list):
        name += f" m{','.join(str(m) for m in milestones)}"
    gamma = recorded.get("gamma")
    if isinstance(gamma, (int, float)) and not isinstance(gamma, bool):
        name += f" g{gamma:g}"
    return name


def _series(run: RunInfo, key: str) -> list[float]:
    return [
        m[key]
        for m in run.metrics
        if isinstance(m.get(key), (int, float)) and not isinstance(m.get(key), bool)
    ]


def run_seconds(run: RunInfo) -> float:
    """Training time summed over recorded epochs (a resumed run's sessions add up)."""
    return float(sum(_series(run, "seconds")))


def process_text(run: RunInfo) -> str:
    """Where a running (or interrupted) run's process is, and whether it lives."""
    pid = run.pid
    if pid is None or run.status not in (Status.RUNNING, Status.INTERRUPTED):
        return ""
    if run.host and run.host != socket.gethostname():
        return f"pid {pid} on {run.host}"
    return f"pid {pid} {'alive' if run.status is Status.RUNNING else 'gone'}"


def summary_row(run: RunInfo) -> tuple[str, ...]:
    """One run as a row of text, in SUMMARY_COLUMNS order."""
    accs, losses = _series(run, "test_acc"), _series(run, "train_loss")
    edited = " · edited" if run.edits else ""
    total = run.config.get("epochs", "?")
    return (
        run.name,
        run.status.value,
        f"{run.epochs_done}/{total if total is not None else '?'}",
        f"{max(accs):.2f}%" if accs else "-",
        f"{accs[-1]:.2f}%" if accs else "-",
        f"{losses[-1]:.4f}" if losses else "-",
        format_duration(run_seconds(run)),
        describe_params(run.config) + edited,
    )


def sort_runs(runs: list[RunInfo], key: str) -> list[RunInfo]:
    """Runs ordered by one of SORT_KEYS: best first; runs without the figure go last."""
    if key == "newest":
        return sorted(runs, key=lambda r: r.name, reverse=True)
    missing = float("inf")

    def value(run: RunInfo) -> float:
        if key == "time":
            return run_seconds(run)
        series = _series(run, "train_loss" if key == "last loss" else "test_acc")
        if not series:
            return missing
        if key == "last loss":
            return series[-1]
        # Higher accuracy first: negate, so one ascending sort serves every key.
        return -(max(series) if key == "best acc" else series[-1])

    return sorted(runs, key=value)
