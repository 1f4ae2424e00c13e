"""`steplr-tui export RUN --tensorboard DIR`, read back with TensorBoard's own reader and
compared with metrics.jsonl and events.jsonl. TensorBoard is an optional extra; without
it these tests skip, saying so (and the command says what to install)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from steplr_tui.cli import main
from steplr_tui.run.record import RunRecord
from steplr_tui.runfolder import (
    BatchProgress,
    EpochEnd,
    RunEnded,
    RunOpened,
    Status,
    as_float32,
)
from steplr_tui.runfolder.reader import read_run
from steplr_tui.runfolder.schedule import ScheduleEdit

CONFIG = {"optimizer": "adam", "lr": 0.001, "step_size": 2, "gamma": 0.1, "epochs": 4}
STEPS = 6


def progress(epoch: int, upto: int) -> BatchProgress:
    losses = as_float32(1.0 / epoch + 0.01 * i for i in range(upto))
    return BatchProgress(epoch, upto, STEPS, losses, 100.0, float(epoch))


def end(epoch: int, lr: float, edit: ScheduleEdit | None = None) -> EpochEnd:
    return EpochEnd(
        epoch,
        lr,
        1.0 / epoch,
        90.0 + epoch,
        0.5,
        float(epoch),
        edit=edit,
        metrics={"val_loss": 2.0 / epoch},
        steps=STEPS,
    )


@pytest.fixture
def resumed_run(tmp_path: Path) -> Path:
    """Epochs 1-2 (an edit after 2), epoch 3 stopped half way, then resumed: 3 and 4."""
    record = RunRecord.create(tmp_path / "runs", CONFIG, {})
    record.mark_running()
    record.write(RunOpened(str(record.path), CONFIG, pid=1))
    for e, lr in ((1, 1e-3), (2, 1e-3)):
        record.write(progress(e, STEPS))
        record.write(end(e, lr, ScheduleEdit(gamma=0.5) if e == 2 else None))
    record.write(progress(3, 3))
    record.write(RunEnded(Status.STOPPED, "stopped", 2, 2.0))
    record.close()
    again = RunRecord(record.path)
    again.mark_running()
    again.write(RunOpened(str(record.path), CONFIG, first_epoch=3, pid=2))
    for e in (3, 4):
        again.write(progress(e, STEPS))
        again.write(end(e, 5e-4))
    again.write(RunEnded(Status.COMPLETED, "", 4, 4.0))
    again.close()
    return record.path


def read_back(folder: Path):
    accumulator = pytest.importorskip(
        "tensorboard.backend.event_processing.event_accumulator",
        reason="the tensorboard extra is not installed: pip install -e '.[tensorboard]'",
    )
    acc = accumulator.EventAccumulator(str(folder), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    return acc


def test_the_exported_scalars_are_the_records(resumed_run: Path, tmp_path: Path, capsys):
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed")
    logs = tmp_path / "tb"
    assert main(["export", str(resumed_run), "--tensorboard", str(logs)]) == 0
    err = capsys.readouterr().err
    assert f"tensorboard --logdir {logs}" in err
    acc = read_back(logs / resumed_run.name)
    metrics = read_run(resumed_run).metrics

    def series(tag):
        return [(e.step, e.value) for e in acc.Scalars(tag)]

    for tag, key in (
        ("lr", "lr"),
        ("train/loss", "train_loss"),
        ("test/accuracy", "test_acc"),
        ("val_loss", "val_loss"),
    ):
        got = series(tag)
        assert [s for s, _ in got] == [m["epoch"] for m in metrics]
        # float32 in TensorBoard: equal to the record's value rounded the same way
        assert [v for _, v in got] == list(as_float32(m[key] for m in metrics))
    batches = series("train/loss_per_batch")
    # 4 epochs of 6 batches: the first attempt at epoch 3 replaced by the second.
    assert [s for s, _ in batches] == list(range(1, 4 * STEPS + 1))
    expected = [v for e in (1, 2, 3, 4) for v in progress(e, STEPS).losses]
    assert [v for _, v in batches] == expected
    edits = acc.Tensors("edits")
    assert [t.step for t in edits] == [2]
    assert edits[0].tensor_proto.string_val[0].decode() == "after epoch 2: gamma 0.5"


def test_a_second_export_replaces_the_first(resumed_run: Path, tmp_path: Path):
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed")
    logs = tmp_path / "tb"
    for _ in range(2):
        assert main(["export", str(resumed_run), "--tensorboard", str(logs)]) == 0
    assert len(list((logs / resumed_run.name).glob("events.out.tfevents.*"))) == 1
    acc = read_back(logs / resumed_run.name)
    assert len(acc.Scalars("lr")) == 4


def test_an_unwritable_folder_is_named(resumed_run: Path, tmp_path: Path, capsys):
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed")
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert main(["export", str(resumed_run), "--tensorboard", str(blocker)]) == 1
    err = capsys.readouterr().err
    assert "cannot write TensorBoard files in" in err and "choose another --tensorboard" in err
    assert "Traceback" not in err


def test_nan_losses_are_left_out(tmp_path: Path):
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed")
    record = RunRecord.create(tmp_path / "runs", CONFIG, {})
    record.mark_running()
    record.write(RunOpened(str(record.path), CONFIG, pid=1))
    record.write(BatchProgress(1, 2, STEPS, (0.5, math.nan), 1.0, 1.0))
    record.write(RunEnded(Status.FAILED, "loss became nan", 0, 1.0))
    record.close()
    from steplr_tui.cli.tensorboard import export_tensorboard

    done = export_tensorboard(read_run(record.path), tmp_path / "tb")
    assert done.batches == 2 and done.scalars == 1


def test_without_tensorboard_the_command_says_what_to_install(
    resumed_run: Path, tmp_path: Path, capsys, monkeypatch
):
    import sys

    monkeypatch.setitem(sys.modules, "tensorboard.summary.writer.event_file_writer", None)
    assert main(["export", str(resumed_run), "--tensorboard", str(tmp_path / "tb")]) == 1
    assert "pip install 'steplr-tui[tensorboard]'" in capsys.readouterr().err
