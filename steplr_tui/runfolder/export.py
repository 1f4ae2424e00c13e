"""Export a run: its metrics as CSV beside metrics.jsonl, and a PyTorch snippet.

The snippet holds the optimizer and scheduler lines that reproduce the run's
schedule (StepLR, or the scheduler the run had: MultiStepLR, a warmup then a
decay, cosine...), and, when the schedule was edited live, the same edits at the
same epoch boundaries, so pasting it into a training script gives the same lrs.
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
    "edit_milestones",
    "edit_warmup",
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
                ",".join(str(m) for m in edit.milestones) if edit.milestones else "",
                _cell(edit.warmup),
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
    spec = scheduler_spec(config)
    made, step = _scheduler_code(spec)
    uses_counter = any(e.milestones is not None for e in edits.values())
    lines = [
        "import torch",
        "from torch import nn",
        *(["import collections"] if uses_counter else []),
        "",
        *model,
        f"optimizer = {optimizer}",
        *made,
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
    lines += ["", f"for epoch in range(1, {count} + 1):", TRAIN_PLACEHOLDER]
    if step:
        lines.append(step)
    if edits:
        target = "scheduler._schedulers[1]" if spec.get("class") == "SequentialLR" else "scheduler"
        lines += [
            "    edit = EDITS.get(epoch, {})",
            '    if "step_size" in edit:',
            f'        {target}.step_size = edit["step_size"]',
            '    if "gamma" in edit:',
            f'        {target}.gamma = edit["gamma"]',
        ]
        if uses_counter:
            lines += [
                '    if "milestones" in edit:',
                f'        {target}.milestones = collections.Counter(edit["milestones"])',
            ]
        if any(e.warmup is not None for e in edits.values()):
            lines += [
                '    if "warmup" in edit:',
                '        scheduler._milestones[0] = edit["warmup"]',
                '        scheduler._schedulers[0].total_iters = edit["warmup"]',
            ]
        lines += [
            '    if "lr" in edit:',
            "        for group in optimizer.param_groups:",
            '            group["lr"] = edit["lr"]',
        ]
    return "\n".join(lines) + "\n"


# The settings each scheduler's constructor takes, as the record names them.
ARGS = {
    "StepLR": ("step_size", "gamma"),
    "MultiStepLR": ("milestones", "gamma"),
    "ExponentialLR": ("gamma",),
    "CosineAnnealingLR": ("T_max", "eta_min"),
    "LinearLR": ("start_factor", "end_factor", "total_iters"),
    "ConstantLR": ("factor", "total_iters"),
    "PolynomialLR": ("total_iters", "power"),
    "ReduceLROnPlateau": ("mode", "factor", "patience", "threshold", "cooldown"),
}


def scheduler_spec(config: Mapping[str, Any]) -> dict[str, Any]:
    """The run's scheduler as {"class": ..., settings...}: a script's recorded
    `scheduler_params`, else the built-in trainer's `scheduler` kind (StepLR by default)."""
    recorded = config.get("scheduler_params")
    if isinstance(recorded, Mapping) and isinstance(recorded.get("class"), str):
        return dict(recorded)
    kind = config.get("scheduler", "step")
    step, gamma = config.get("step_size"), config.get("gamma")
    epochs = config.get("epochs")
    if kind == "multistep":
        milestones = list(config.get("milestones") or [])
        if not milestones and isinstance(step, int) and isinstance(epochs, int):
            milestones = list(range(step, epochs, step))
        return {"class": "MultiStepLR", "milestones": milestones, "gamma": gamma}
    if kind == "warmup-step":
        warmup = config.get("warmup", 1)
        return {
            "class": "SequentialLR",
            "milestones": [warmup],
            "schedulers": [
                {
                    "class": "LinearLR",
                    "start_factor": 0.1,
                    "end_factor": 1.0,
                    "total_iters": warmup,
                },
                {"class": "StepLR", "step_size": step, "gamma": gamma},
            ],
        }
    if kind == "cosine":
        return {"class": "CosineAnnealingLR", "T_max": epochs, "eta_min": 0.0}
    if kind == "plateau":
        return {"class": "ReduceLROnPlateau", "mode": "max", "factor": gamma, "patience": step}
    return {"class": "StepLR", "step_size": step, "gamma": gamma}


def _args(spec: Mapping[str, Any]) -> str:
    names = ARGS[str(spec["class"])]
    parts = []
    for name in names:
        value = spec.get(name)
        if value is None:
            continue
        if isinstance(value, float):
            value = float(value)
        parts.append(f"{name}={value!r}")
    return ", ".join(parts)


def _scheduler_code(spec: Mapping[str, Any]) -> tuple[list[str], str]:
    """(the lines that build the scheduler, the loop's step line)."""
    kind = str(spec.get("class"))
    prefix = "torch.optim.lr_scheduler."
    step = "    scheduler.step()"
    if kind == "none":
        return [], ""
    if kind == "StepLR":
        step_size = int(_number(spec, "step_size", whole=True))
        gamma = repr(float(_number(spec, "gamma")))
        return [
            "scheduler = torch.optim.lr_scheduler.StepLR(",
            f"    optimizer, step_size={step_size}, gamma={gamma}",
            ")",
        ], step
    if kind == "ReduceLROnPlateau":
        return [f"scheduler = {prefix}ReduceLROnPlateau(optimizer, {_args(spec)})"], (
            "    scheduler.step(test_acc)  # the metric it follows"
        )
    if kind == "SequentialLR":
        parts = spec.get("schedulers", [])
        if len(parts) == 2 and all(str(p.get("class")) in ARGS for p in parts):
            return [
                f"warmup = {prefix}{parts[0]['class']}(optimizer, {_args(parts[0])})",
                f"decay = {prefix}{parts[1]['class']}(optimizer, {_args(parts[1])})",
                f"scheduler = {prefix}SequentialLR(",
                f"    optimizer, [warmup, decay], milestones={list(spec.get('milestones', []))!r}",
                ")",
            ], step
    elif kind in ARGS:
        return [f"scheduler = {prefix}{kind}(optimizer, {_args(spec)})"], step
    settings = {k: v for k, v in spec.items() if k != "class"}
    # Only a name and a repr reach the code: a recorded class name cannot end the comment.
    shown = kind if _OPTIMIZER_NAME.fullmatch(kind) else "scheduler"
    return [f"scheduler = ...  # your {shown} ({settings!r:.200})"], step


def run_snippet(run: RunInfo) -> str:
    impl = str(run.meta.get("optimizer_impl", "default"))
    config = {**run.config, "kind": run.kind}
    return pytorch_snippet(config, run.edits, impl)


def _cell(value: Any) -> str:
    if value is None or isinstance(value, bool):
        return ""
    return repr(value) if isinstance(value, float) else str(value)
