"""Export (CSV and snippet, in the app's module and from the shell), overlays, phases, sort."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from steplr_tui.cli import main
from steplr_tui.run.control import Inbox
from steplr_tui.run.jobs import Job, run_job
from steplr_tui.runfolder import EditRequest, EpochEnd, RunOpened, new_request_id
from steplr_tui.runfolder.export import (
    CSV_COLUMNS,
    metrics_csv,
    pytorch_snippet,
    run_snippet,
)
from steplr_tui.runfolder.params import TrainConfig
from steplr_tui.runfolder.reader import list_runs, read_run
from steplr_tui.runfolder.runs_table import sort_runs
from steplr_tui.runfolder.schedule import ScheduleEdit, lrs_with_edits
from steplr_tui.viewer.compare import Overlay
from steplr_tui.viewer.lr_phases import phases
from tests.helpers import lrs_from_snippet
from tests.synthetic import synthetic_data

DATA = synthetic_data(n_train=256, n_test=64)


def recorded_run(tmp_path: Path, edits: dict[int, ScheduleEdit] | None = None, **params):
    config = TrainConfig(device="cpu", **{"epochs": 5, "lr": 0.01, **params})
    inbox = Inbox()
    count = [0]

    def send(epoch: int) -> None:
        edit = (edits or {}).get(epoch)
        if edit:
            inbox.put(EditRequest(new_request_id(), edit, "test"))

    def emit(event):
        if isinstance(event, RunOpened):
            send(1)
        if isinstance(event, EpochEnd):
            count[0] += 1
            send(count[0] + 1)

    run_job(Job(config, tmp_path, inbox=inbox), emit, data=DATA)
    return next(r for r in list_runs(tmp_path) if r.config["lr"] == config.lr)


EDITS = {2: ScheduleEdit(lr=0.05), 3: ScheduleEdit(step_size=1, gamma=0.5)}


def test_snippet_reproduces_the_recorded_schedule_with_edits(tmp_path: Path):
    run = recorded_run(tmp_path, EDITS)
    assert run.edits == EDITS
    snippet = run_snippet(run)
    # The run's Adam was the fused kernel, whose numbers differ from the default one's
    # in the last bits: the snippet asks for the same.
    assert run.meta["optimizer_impl"] == "fused"
    assert "torch.optim.Adam(model.parameters(), lr=0.01, fused=True)" in snippet
    assert "StepLR(\n    optimizer, step_size=2, gamma=0.1\n)" in snippet
    assert lrs_from_snippet(snippet) == [m["lr"] for m in run.metrics]
    assert lrs_from_snippet(snippet) == lrs_with_edits(0.01, 2, 0.1, 5, EDITS)


def test_snippet_for_sgd_has_momentum_and_no_edit_code():
    config = TrainConfig(optimizer="sgd", momentum=0.8, lr=0.1, epochs=4).as_dict()
    snippet = pytorch_snippet(config, {})
    assert "torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.8)" in snippet
    assert "EDITS" not in snippet
    assert lrs_from_snippet(snippet) == lrs_with_edits(0.1, 2, 0.1, 4, {})


def test_csv_has_a_row_per_epoch_and_the_edits(tmp_path: Path):
    run = recorded_run(tmp_path, EDITS)
    rows = list(csv.DictReader(io.StringIO(metrics_csv(run))))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4, 5]
    assert [float(r["test_acc"]) for r in rows] == [m["test_acc"] for m in run.metrics]
    assert rows[1]["edit_lr"] == "0.05" and rows[1]["edit_gamma"] == ""
    assert rows[2]["edit_step_size"] == "1" and rows[2]["edit_gamma"] == "0.5"
    assert rows[0]["edit_lr"] == rows[0]["edit_step_size"] == ""


def test_export_command_writes_csv_and_prints_the_snippet(tmp_path: Path, capsys):
    run = recorded_run(tmp_path, EDITS)
    assert main(["export", run.name, "--csv", "--runs-dir", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert out == run_snippet(run)
    assert f"wrote {run.path / 'metrics.csv'} (5 epochs)" in err
    assert (run.path / "metrics.csv").read_text() == metrics_csv(read_run(run.path))
    # Without --csv, only the snippet.
    (run.path / "metrics.csv").unlink()
    assert main(["export", str(run.path)]) == 0
    assert not (run.path / "metrics.csv").exists()


def test_export_command_names_a_missing_run(tmp_path: Path, capsys):
    assert main(["export", "nope", "--runs-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no run 'nope'" in err and "--list-runs" in err
    with pytest.raises(SystemExit) as info:
        main(["export"])
    assert info.value.code == 2
    assert "RUN" in capsys.readouterr().err


def test_export_command_reports_an_unwritable_folder(tmp_path: Path, capsys):
    run = recorded_run(tmp_path)
    (run.path / "metrics.csv").mkdir()  # a folder where the file should go
    assert main(["export", str(run.path), "--csv"]) == 1
    assert "cannot write" in capsys.readouterr().err


def test_overlay_from_a_record_and_sorting(tmp_path: Path):
    fast = recorded_run(tmp_path, lr=0.05)
    slow = recorded_run(tmp_path, lr=0.0001)
    overlay = Overlay.from_run(fast)
    assert overlay.label == "adam lr 0.05 s2 g0.1 b64" and not overlay.edited
    assert overlay.name == fast.name[: len("20261128-101500")]
    assert list(overlay.accs) == [m["test_acc"] for m in fast.metrics]
    assert overlay.steps_per_epoch == 4 and len(overlay) == 5
    runs = list_runs(tmp_path)
    best = max((fast, slow), key=lambda r: max(m["test_acc"] for m in r.metrics))
    assert sort_runs(runs, "best acc")[0].path == best.path
    lowest = min((fast, slow), key=lambda r: r.metrics[-1]["train_loss"])
    assert sort_runs(runs, "last loss")[0].path == lowest.path
    assert [r.name for r in sort_runs(runs, "newest")] == sorted(
        (r.name for r in runs), reverse=True
    )


def epoch(n, lr, loss, acc):
    return EpochEnd(n, lr, loss, acc, seconds=1.0, elapsed=float(n))


def test_phases_group_epochs_by_lr_and_measure_each_decay():
    epochs = [
        epoch(1, 1e-3, 0.9, 88.0),
        epoch(2, 1e-3, 0.5, 90.0),
        epoch(3, 1e-4, 0.4, 91.5),
        epoch(4, 1e-4, 0.38, 91.7),
        epoch(5, 1e-5, 0.38, 91.6),
    ]
    rows = phases(epochs)
    assert [(p.first, p.last, p.lr) for p in rows] == [(1, 2, 1e-3), (3, 4, 1e-4), (5, 5, 1e-5)]
    assert rows[0].loss_change == pytest.approx(0.5 - 0.9)  # within the first phase
    assert rows[1].loss_change == pytest.approx(0.38 - 0.5)  # since the end of the last one
    assert rows[1].acc_change == pytest.approx(91.7 - 90.0)
    assert rows[2].acc_change == pytest.approx(-0.1)
    assert [p.seconds for p in rows] == [2.0, 2.0, 1.0]
    assert [p.epochs for p in rows] == ["1-2", "3-4", "5"]
    assert phases([]) == []
