"""Runs as rows of text: the runs table in the dashboard and `--list-runs` both show these.

Plain Python: no torch, no Textual. The most telling columns come first, so a
narrow terminal shows what matters and the rest scrolls.
"""

from __future__ import annotations

import socket
from typing import Any

from steplr_tui.runfolder import Status
from steplr_tui.runfolder.reader import RunInfo
from steplr_tui.runfolder.reader import short_name as short_name  # the tables name runs by it
from steplr_tui.runfolder.schedule import format_lr
from steplr_tui.runfolder.text import clean_text, format_duration

SUMMARY_COLUMNS = (
    "run",
    "status",
    "epochs",
    "data",
    "best acc",
    "last acc",
    "last loss",
    "time",
    "parameters",
)
SORT_KEYS = ("newest", "best acc", "last acc", "last loss", "time")


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
    if pid is None and run.status is Status.RUNNING:
        return "alive (holds its lock)"
    if pid is None or run.status not in (Status.RUNNING, Status.INTERRUPTED):
        return ""
    if run.host and run.host != socket.gethostname():
        return clean_text(f"pid {pid} on {run.host}")
    return f"pid {pid} {'alive' if run.status is Status.RUNNING else 'gone'}"


def dataset_text(run: RunInfo) -> str:
    """What the run trained on, short: 'MNIST', 'sample' (the bundled MNIST sample),
    'Fashion-MNIST', or what a script recorded as its dataset; '-' when unknown."""
    name = run.meta.get("dataset_name")
    if not isinstance(name, str) or not name:
        name = run.config.get("dataset")  # not started yet, or a script's own config
    if not isinstance(name, str) or not name:
        return "-"
    known = {"MNIST sample": "sample", "mnist": "MNIST", "kmnist": "KMNIST"}
    return known.get(name, "Fashion-MNIST" if name == "fashion-mnist" else name)


def summary_row(run: RunInfo) -> tuple[str, ...]:
    """One run as a row of text, in SUMMARY_COLUMNS order (every cell safe for a terminal:
    a folder name or a config value cannot hold an escape sequence)."""
    accs, losses = _series(run, "test_acc"), _series(run, "train_loss")
    edited = " · edited" if run.edits else ""
    total = run.config.get("epochs", "?")
    params = "config.json damaged" if run.config_damaged else describe_params(run.config)
    row = (
        run.name,
        run.status.value,
        f"{run.epochs_done}/{total if total is not None else '?'}",
        dataset_text(run),
        f"{max(accs):.2f}%" if accs else "-",
        f"{accs[-1]:.2f}%" if accs else "-",
        f"{losses[-1]:.4f}" if losses else "-",
        format_duration(run_seconds(run)),
        params + edited,
    )
    return tuple(clean_text(cell) for cell in row)


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


def branch_parent(run: RunInfo) -> str | None:
    """The name of the run a branch was made from (config.json's `branch`), if it is one."""
    section = run.meta.get("branch")
    parent = section.get("parent") if isinstance(section, dict) else None
    return parent if isinstance(parent, str) and parent else None


def nest_branches(runs: list[RunInfo]) -> list[tuple[RunInfo, int]]:
    """The runs in their order, each branch moved right under its parent (with its depth:
    0 for a run whose parent is not listed, 1 for a branch, 2 for a branch's branch...)."""
    names = {run.name for run in runs}
    children: dict[str, list[RunInfo]] = {}
    roots = []
    for run in runs:
        parent = branch_parent(run)
        if parent is not None and parent in names and parent != run.name:
            children.setdefault(parent, []).append(run)
        else:
            roots.append(run)
    out: list[tuple[RunInfo, int]] = []
    seen: set[str] = set()

    def visit(run: RunInfo, depth: int) -> None:
        if run.name in seen:
            return
        seen.add(run.name)
        out.append((run, depth))
        for child in children.get(run.name, []):
            visit(child, depth + 1)

    for run in roots:
        visit(run, 0)
    for run in runs:  # a cycle of parents (hand-edited records): listed all the same
        visit(run, 0)
    return out


def nested_name(name: str, depth: int) -> str:
    """A run's name indented under its parent: '└ 20261206-064102' for a branch."""
    return name if depth <= 0 else "  " * (depth - 1) + "└ " + name
