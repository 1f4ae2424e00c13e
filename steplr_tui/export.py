"""Export a run: its metrics as CSV beside metrics.jsonl, and a PyTorch snippet.

The snippet holds the optimizer and `StepLR(...)` lines that reproduce the run's
schedule, and, when the schedule was edited live, the same edits at the same
epoch boundaries, so pasting it into a training script gives the same lrs.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from steplr_tui.runs import RunInfo, write_atomic
from steplr_tui.schedule import ScheduleEdit

CSV_FILE = "metrics.csv"
CSV_COLUMNS = (
    "epoch",
    "lr",
    "train_loss",
    "test_acc",
    "seconds",
    "edit_lr",
    "edit_step_size",
    "edit_gamma",
)
# Marks the line a user replaces with their own epoch of training.
TRAIN_PLACEHOLDER = "    ...  # train one epoch here: optimizer.step() for each batch"


def metrics_csv(run: RunInfo) -> str:
    """One row per recorded epoch; the edit columns are empty where nothing was edited."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    edits = run.edits
    for m in sorted(run.metrics, key=lambda m: m["epoch"]):
        edit = edits.get(m["epoch"], ScheduleEdit())
        writer.writerow(
            [
                m["epoch"],
                *(_cell(m.get(k)) for k in ("lr", "train_loss", "test_acc", "seconds")),
                *(_cell(v) for v in (edit.lr, edit.step_size, edit.gamma)),
            ]
        )
    return out.getvalue()


def write_csv(run: RunInfo) -> Path:
    """Write `metrics.csv` in the run's folder (atomically) and return its path."""
    path = run.path / CSV_FILE
    write_atomic(path, metrics_csv(run).encode())
    return path


def pytorch_snippet(config: Mapping[str, Any], edits: Mapping[int, ScheduleEdit]) -> str:
    """Optimizer and StepLR lines (and any live edits) that reproduce the run's schedule."""
    lr = repr(float(config["lr"]))
    if config.get("optimizer") == "sgd":
        momentum = repr(float(config.get("momentum", 0.0)))
        optimizer = f"torch.optim.SGD(model.parameters(), lr={lr}, momentum={momentum})"
    else:
        optimizer = f"torch.optim.Adam(model.parameters(), lr={lr})"
    gamma = repr(float(config["gamma"]))
    lines = [
        "import torch",
        "from torch import nn",
        "",
        "model = nn.Linear(28 * 28, 10)",
        f"optimizer = {optimizer}",
        "scheduler = torch.optim.lr_scheduler.StepLR(",
        f"    optimizer, step_size={int(config['step_size'])}, gamma={gamma}",
        ")",
    ]
    if edits:
        lines += [
            "# Edits made while the run trained, applied after that epoch's scheduler.step():",
            "EDITS = {",
            *(f"    {epoch}: {edits[epoch].as_dict()!r}," for epoch in sorted(edits)),
            "}",
        ]
    lines += [
        "",
        f"for epoch in range(1, {int(config['epochs'])} + 1):",
        TRAIN_PLACEHOLDER,
        "    scheduler.step()",
    ]
    if edits:
        lines += [
            "    edit = EDITS.get(epoch, {})",
            '    if "step_size" in edit:',
            '        scheduler.step_size = edit["step_size"]',
            '    if "gamma" in edit:',
            '        scheduler.gamma = edit["gamma"]',
            '    if "lr" in edit:',
            "        for group in optimizer.param_groups:",
            '            group["lr"] = edit["lr"]',
        ]
    return "\n".join(lines) + "\n"


def run_snippet(run: RunInfo) -> str:
    return pytorch_snippet(run.config, run.edits)


def _cell(value: Any) -> str:
    if value is None or isinstance(value, bool):
        return ""
    return repr(value) if isinstance(value, float) else str(value)
