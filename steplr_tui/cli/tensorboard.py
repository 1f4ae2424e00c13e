"""`steplr-tui export RUN --tensorboard DIR`: a run's scalars as TensorBoard event files.

Written with TensorBoard's own event writer (no torch, no TensorFlow) into
`DIR/<run name>/`, so `tensorboard --logdir DIR` shows every exported run side by
side. Per epoch, from `metrics.jsonl` (the record of truth): `lr`, `train/loss`,
`test/accuracy`, and every metric the run recorded under its own name; each live
edit as text (`edits`). Per batch, from `events.jsonl`: `train/loss_per_batch`,
at the global batch number. Wall times are the record's own. A resumed run's
batches trained again replace the first attempt's, as in the dashboard. A second
export of the same run replaces the first.

TensorBoard is an optional extra: `pip install 'steplr-tui[tensorboard]'`.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

from steplr_tui.runfolder import EVENTS_FILE, BatchProgress, RunOpened, decode_event
from steplr_tui.runfolder.files import read_file
from steplr_tui.runfolder.reader import RunInfo, recorded_edit

BATCH_TAG = "train/loss_per_batch"
EPOCH_TAGS = {"lr": "lr", "train_loss": "train/loss", "test_acc": "test/accuracy"}
SKIPPED = {"epoch", "seconds", "edit"}  # not scalars to plot (seconds: see time)


class ExportError(RuntimeError):
    """The export cannot be written; the message says why and what to do."""


@dataclass(frozen=True)
class Exported:
    folder: Path
    epochs: int
    batches: int
    scalars: int
    edits: int


def export_tensorboard(run: RunInfo, log_dir: Path) -> Exported:
    """Write the run's scalars under `log_dir/<run name>/`; raise ExportError."""
    try:
        from tensorboard.compat.proto.event_pb2 import Event
        from tensorboard.compat.proto.summary_pb2 import Summary, SummaryMetadata
        from tensorboard.compat.proto.tensor_pb2 import TensorProto
        from tensorboard.compat.proto.tensor_shape_pb2 import TensorShapeProto
        from tensorboard.plugins.text.plugin_data_pb2 import TextPluginData
        from tensorboard.summary.writer.event_file_writer import EventFileWriter
    except ImportError as exc:
        raise ExportError(
            "--tensorboard needs the tensorboard package: pip install 'steplr-tui[tensorboard]'"
        ) from exc

    out = log_dir.expanduser() / run.name
    try:
        out.mkdir(parents=True, exist_ok=True)
        for old in out.glob("events.out.tfevents.*"):
            old.unlink()  # a second export replaces the first
        writer = EventFileWriter(str(out))
    except OSError as exc:
        raise ExportError(
            f"cannot write TensorBoard files in {out} ({exc.strerror or exc}): "
            "choose another --tensorboard DIR"
        ) from exc

    def scalar(tag: str, value: float, step: int, wall: float) -> None:
        summary = Summary(value=[Summary.Value(tag=tag, simple_value=value)])
        writer.add_event(Event(summary=summary, step=step, wall_time=wall))

    def text(tag: str, body: str, step: int, wall: float) -> None:
        meta = SummaryMetadata(
            plugin_data=SummaryMetadata.PluginData(
                plugin_name="text", content=TextPluginData(version=0).SerializeToString()
            )
        )
        tensor = TensorProto(
            dtype="DT_STRING",
            string_val=[body.encode()],
            tensor_shape=TensorShapeProto(dim=[TensorShapeProto.Dim(size=1)]),
        )
        value = Summary.Value(tag=tag, metadata=meta, tensor=tensor)
        writer.add_event(Event(summary=Summary(value=[value]), step=step, wall_time=wall))

    batches, epoch_times = _batches_and_times(run.path)
    now = time.time()
    scalars = edits = 0
    for m in sorted(run.metrics, key=lambda m: m["epoch"]):
        epoch = m["epoch"]
        wall = epoch_times.get(epoch, now)
        for key, value in m.items():
            if key in SKIPPED or isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            if math.isfinite(value):
                scalar(EPOCH_TAGS.get(key, key), float(value), epoch, wall)
                scalars += 1
        edit = recorded_edit(m)
        if edit is not None:
            text("edits", f"after epoch {epoch}: {edit.describe()}", epoch, wall)
            edits += 1
    step = 0
    for epoch in sorted(batches):
        for value, wall in batches[epoch]:
            step += 1
            if math.isfinite(value):
                scalar(BATCH_TAG, value, step, wall)
                scalars += 1
    try:
        writer.flush()
        writer.close()
    except OSError as exc:
        raise ExportError(f"cannot finish the TensorBoard file in {out} ({exc})") from exc
    return Exported(out, len(run.metrics), step, scalars, edits)


def _batches_and_times(folder: Path) -> tuple[dict[int, list[tuple[float, float]]], dict]:
    """Every batch loss of the sessions that count, by epoch, with its line's wall time;
    and each epoch's wall time."""
    batches: dict[int, list[tuple[float, float]]] = {}
    times: dict[int, float] = {}
    try:
        data = read_file(folder / EVENTS_FILE)
    except OSError:
        return batches, times
    for line in data.split(b"\n"):
        try:
            obj = json.loads(line)
            decoded = decode_event(obj)
        except ValueError:
            continue  # a torn or foreign line: the dashboard skips it too
        if decoded is None:
            continue
        event, wall = decoded[1], float(obj.get("time") or 0.0)
        if isinstance(event, RunOpened) and event.first_epoch > 1:
            for epoch in [e for e in batches if e >= event.first_epoch]:
                del batches[epoch]  # trained again by this session
        elif isinstance(event, BatchProgress):
            batches.setdefault(event.epoch, []).extend((v, wall) for v in event.losses)
        elif obj.get("type") == "epoch":
            times[obj["epoch"]] = wall
    return batches, times
