"""Export a run: its metrics as CSV beside metrics.jsonl, and a PyTorch snippet.

The snippet holds the optimizer and `StepLR(...)` lines that reproduce the run's
schedule, and, when the schedule was edited live, the same edits at the same
epoch boundaries, so pasting it into a training script gives the same lrs.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from steplr_tui.runfolder.files import write_atomic
from steplr_tui.runfolder.reader import RunInfo
from steplr_tui.runfolder.schedule import ScheduleEdit

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


MODEL_LINES = {
    "linear": ["model = nn.Linear(28 * 28, 10)"],
    "mlp": ["model = nn.Sequential(nn.Linear(28 * 28, 256), nn.ReLU(), nn.Linear(256, 10))"],
    "cnn": [
        "model = nn.Sequential(  # steplr-tui's LeNet-style CNN, on flat 784-pixel images",
        "    nn.Unflatten(1, (1, 28, 28)),",
        "    nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),",
        "    nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),",
        "    nn.Flatten(), nn.Linear(16 * 5 * 5, 120), nn.ReLU(),",
        "    nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10),",
        ")",
    ],
}


class ExportError(ValueError):
    """A record whose values cannot make a snippet; the message names the value."""


_OPTIMIZER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,39}")


def _number(config: Mapping[str, Any], name: str, whole: bool = False) -> float:
    """A recorded value that goes into the code: a finite number, or ExportError."""
    if name not in config:
        raise ExportError(f"its config has no {name}")
    value = config[name]
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok and whole:
        ok = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if not ok or not math.isfinite(value):
        shown = repr(value) if isinstance(value, (int, float, str)) else type(value).__name__
        kind = "a whole number" if whole else "a number"
        raise ExportError(f"its config has {name} {shown[:40]}, not {kind}")
    return value


def pytorch_snippet(
    config: Mapping[str, Any], edits: Mapping[int, ScheduleEdit], impl: str = "default"
) -> str:
    """Optimizer and StepLR lines (and any live edits) that reproduce the run's schedule.

    `impl` is how the run's Adam computed ('fused' for the built-in trainer, whose
    fused kernel differs from the default implementation in the last bits). Every
    recorded value that reaches the code is a checked number (`repr`) or a name from
    a whitelist: a config cannot put code into the snippet. Raises ExportError.
    """
    lr = repr(float(_number(config, "lr")))
    step_size = int(_number(config, "step_size", whole=True))
    gamma = repr(float(_number(config, "gamma")))
    name = config.get("optimizer", "adam")
    if not isinstance(name, str) or not _OPTIMIZER_NAME.fullmatch(name):
        raise ExportError(
            f"its config has optimizer {str(name)[:40]!r}, not an optimizer's name "
            "(letters, digits and '_')"
        )
    if name == "sgd":
        momentum = repr(float(_number({"momentum": 0.0, **config}, "momentum")))
        optimizer = f"torch.optim.SGD(model.parameters(), lr={lr}, momentum={momentum})"
    elif name == "adam":
        fused = ", fused=True" if impl == "fused" else ""
        optimizer = f"torch.optim.Adam(model.parameters(), lr={lr}{fused})"
    else:
        optimizer = f"...  # your {name} optimizer, with lr={lr}"
    model = MODEL_LINES.get(str(config.get("model", "linear")), MODEL_LINES["linear"])
    if config.get("kind") == "script" or str(config.get("model", "linear")) not in MODEL_LINES:
        model = ["model = ...  # your model"]
    lines = [
        "import torch",
        "from torch import nn",
        "",
        *model,
        f"optimizer = {optimizer}",
        "scheduler = torch.optim.lr_scheduler.StepLR(",
        f"    optimizer, step_size={step_size}, gamma={gamma}",
        ")",
    ]
    if edits:
        lines += [
            "# Edits made while the run trained, applied after that epoch's scheduler.step():",
            "EDITS = {",
            *(f"    {epoch}: {edits[epoch].as_dict()!r}," for epoch in sorted(edits)),
            "}",
        ]
    epochs = config.get("epochs")
    count = (
        int(epochs)
        if isinstance(epochs, int) and not isinstance(epochs, bool) and epochs > 0
        else max([*edits, 1]) + 1
    )
    lines += [
        "",
        f"for epoch in range(1, {count} + 1):",
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
    impl = str(run.meta.get("optimizer_impl", "default"))
    config = {**run.config, "kind": run.kind}
    return pytorch_snippet(config, run.edits, impl)


def _cell(value: Any) -> str:
    if value is None or isinstance(value, bool):
        return ""
    return repr(value) if isinstance(value, float) else str(value)
