"""`steplr_tui.track` on a user's own small model and loop, in one process.

The loop is what a user writes: their model, their optimizer, their StepLR, their
batches (synthetic here), with `run.log_batch`, `run.should_stop` and
`run.end_epoch` added. Requests arrive through control.jsonl exactly as
`steplr-tui edit` and `steplr-tui stop` write them; SIGTERM goes to a real script
in a subprocess.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from torch import nn

import steplr_tui
from steplr_tui.cli.shell import send
from steplr_tui.run.tracker import RunStopped, TrackingError
from steplr_tui.runfolder import (
    CONFIG_FILE,
    CONTROL_FILE,
    EVENTS_FILE,
    METRICS_FILE,
    Decision,
    EditRequest,
    EpochEnd,
    RunEnded,
    RunOpened,
    Status,
    StopRequest,
    append_line,
    decode_event,
    encode_request,
    new_request_id,
    sender_name,
)
from steplr_tui.runfolder.reader import list_runs, read_run
from steplr_tui.runfolder.schedule import ScheduleEdit, lrs_with_edits, step_lrs
from tests.synthetic import synthetic_data

ROOT = Path(__file__).resolve().parents[1]
DATA = synthetic_data(n_train=256, n_test=64)
BATCH = 32
STEPS = len(DATA.train_x) // BATCH  # 8 batches an epoch
HANG_GUARD_S = 30.0  # only ever reached when something is broken

# The misuse tests call scheduler.step() with no optimizer.step() on purpose.
pytestmark = pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)`")


def make_model(lr: float = 0.05, step_size: int = 2, gamma: float = 0.5, groups: bool = False):
    """A user's own model, optimizer and StepLR (two param groups when `groups`)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 10))
    if groups:
        linear = model[1]
        params = [{"params": [linear.weight]}, {"params": [linear.bias], "lr": lr * 3}]
    else:
        params = model.parameters()
    optimizer = torch.optim.SGD(params, lr=lr, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=step_size, gamma=gamma)
    return model, optimizer, scheduler


def batches(epoch: int):
    gen = torch.Generator().manual_seed(epoch)
    perm = torch.randperm(len(DATA.train_x), generator=gen)
    for step in range(STEPS):
        idx = perm[step * BATCH : (step + 1) * BATCH]
        yield DATA.train_x[idx].float().div(255.0), DATA.train_y[idx]


@torch.no_grad()
def evaluate(model) -> tuple[float, float]:
    logits = model(DATA.test_x.float().div(255.0))
    loss = nn.functional.cross_entropy(logits, DATA.test_y).item()
    acc = 100.0 * (logits.argmax(1) == DATA.test_y).float().mean().item()
    return acc, loss


def train_epoch(run, model, optimizer, on_batch=None) -> list[float]:
    """One epoch of the user's loop; returns the losses it logged."""
    logged = []
    model.train()
    for step, (x, y) in enumerate(batches(run.epoch), start=1):
        if run.should_stop():
            break
        loss = nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        run.log_batch(loss)
        logged.append(loss.item())
        if on_batch is not None:
            on_batch(run, step)
    return logged


def train(run, model, optimizer, scheduler, epochs: int, on_batch=None) -> dict:
    """The user's whole loop, from the epoch the run is at; what it saw, by epoch."""
    seen: dict = {"losses": {}, "edits": {}, "lrs": {}}
    for epoch in range(run.epoch, epochs + 1):
        seen["lrs"][epoch] = [g["lr"] for g in optimizer.param_groups]
        seen["losses"][epoch] = train_epoch(run, model, optimizer, on_batch)
        scheduler.step()
        acc, val_loss = evaluate(model)
        seen["edits"][epoch] = run.end_epoch(test_acc=acc, val_loss=val_loss)
    return seen


def events_of(path: Path) -> list:
    out = []
    for line in (path / EVENTS_FILE).read_text().splitlines():
        decoded = decode_event(json.loads(line))
        if decoded is not None:
            out.append(decoded[1])
    return out


def metrics_of(path: Path) -> list[dict]:
    """metrics.jsonl as written (none yet before the first epoch)."""
    file = path / METRICS_FILE
    return [json.loads(line) for line in file.read_text().splitlines()] if file.exists() else []


# ---- a normal run -------------------------------------------------------------------


def test_a_normal_run_writes_a_normal_run_folder(tmp_path: Path):
    model, optimizer, scheduler = make_model()
    config = {"model": "my linear", "dataset": "synthetic"}
    with steplr_tui.track(
        optimizer, scheduler, config=config, runs_dir=tmp_path, epochs=4, batch_size=BATCH
    ) as run:
        seen = train(run, model, optimizer, scheduler, 4)
    assert not run.stopped

    (info,) = list_runs(tmp_path)
    assert info.path == run.path and info.kind == "script"
    assert info.status is Status.COMPLETED and info.reason == ""
    saved = json.loads((run.path / CONFIG_FILE).read_text())
    assert saved["kind"] == "script"
    assert saved["config"]["model"] == "my linear"
    assert saved["config"]["epochs"] == 4 and saved["config"]["batch_size"] == BATCH
    assert saved["config"]["lr"] == 0.05 and saved["config"]["step_size"] == 2
    assert saved["config"]["gamma"] == 0.5 and saved["config"]["optimizer"] == "sgd"
    assert saved["distributed"]["world_size"] == 1
    assert saved["versions"]["torch"] == torch.__version__

    metrics = metrics_of(run.path)
    assert metrics == info.metrics
    assert [m["epoch"] for m in metrics] == [1, 2, 3, 4]
    assert [m["lr"] for m in metrics] == step_lrs(0.05, 2, 0.5, 4)
    assert [m["lr"] for m in metrics] == [seen["lrs"][e][0] for e in (1, 2, 3, 4)]
    for m in metrics:
        losses = seen["losses"][m["epoch"]]
        assert len(losses) == STEPS
        assert m["train_loss"] == pytest.approx(math.fsum(losses) / len(losses), rel=1e-6)
        assert set(m) == {"epoch", "lr", "train_loss", "test_acc", "val_loss", "seconds"}
    acc, val_loss = evaluate(model)
    assert metrics[-1]["test_acc"] == pytest.approx(acc)
    assert metrics[-1]["val_loss"] == pytest.approx(val_loss)
    assert seen["edits"] == {1: None, 2: None, 3: None, 4: None}

    events = events_of(run.path)
    assert isinstance(events[0], RunOpened) and events[0].kind == "script"
    assert [e.epoch for e in events if isinstance(e, EpochEnd)] == [1, 2, 3, 4]
    assert isinstance(events[-1], RunEnded) and events[-1].status is Status.COMPLETED

    listed = subprocess.run(
        [sys.executable, "-m", "steplr_tui", "--list-runs", "--runs-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert listed.returncode == 0, listed.stderr
    row = next(line for line in listed.stdout.splitlines() if run.path.name in line)
    assert "COMPLETED" in row and "4/4" in row and f"{acc:.2f}%" in row


@pytest.mark.parametrize(
    "make_loss",
    [
        pytest.param(lambda loss: loss.item(), id="float"),
        pytest.param(lambda loss: loss, id="0-dim tensor requiring grad"),
        pytest.param(lambda loss: loss.detach(), id="0-dim tensor"),
        pytest.param(lambda loss: loss.detach().reshape(1), id="one-element tensor"),
        pytest.param(lambda loss: loss.reshape(1, 1), id="one-element tensor requiring grad"),
        pytest.param(lambda loss: int(loss.item() * 1000), id="int"),
    ],
)
def test_log_batch_takes_floats_and_one_element_tensors(tmp_path: Path, make_loss):
    model, optimizer, scheduler = make_model()
    logged = []
    with steplr_tui.track(optimizer, scheduler, runs_dir=tmp_path, epochs=1) as run:
        for x, y in batches(1):
            loss = nn.functional.cross_entropy(model(x), y)
            value = make_loss(loss)
            run.log_batch(value)
            logged.append(float(value.item() if isinstance(value, torch.Tensor) else value))
            optimizer.zero_grad()
            loss.backward()  # logging did not consume or detach the graph
            optimizer.step()
        scheduler.step()
        run.end_epoch()
    (metrics,) = metrics_of(run.path)
    assert metrics["train_loss"] == pytest.approx(math.fsum(logged) / len(logged), rel=1e-6)
    assert "test_acc" not in metrics  # none was given
    assert read_run(run.path).status is Status.COMPLETED


# ---- live edits and stops through control.jsonl ---------------------------------------


def test_a_live_edit_applies_at_the_next_end_epoch(tmp_path: Path):
    model, optimizer, scheduler = make_model(lr=0.05, step_size=2, gamma=0.5, groups=True)
    edit = ScheduleEdit(lr=0.02, step_size=3, gamma=0.25)

    def on_batch(run, step):
        if run.epoch == 2 and step == 3:
            # What `steplr-tui edit RUN --lr 0.02 --step-size 3 --gamma 0.25` appends.
            send(run.path, EditRequest(new_request_id(), edit, sender_name("shell")))

    with steplr_tui.track(optimizer, scheduler, runs_dir=tmp_path, epochs=7) as run:
        seen = train(run, model, optimizer, scheduler, 7, on_batch)
        assert scheduler.step_size == 3 and scheduler.gamma == 0.25

    assert seen["edits"] == {1: None, 2: edit, 3: None, 4: None, 5: None, 6: None, 7: None}
    # Epoch 3 is the first to train with it, in every param group.
    assert seen["lrs"][2] == [0.05, 0.05 * 3]
    assert seen["lrs"][3] == [0.02, 0.02]
    expected = lrs_with_edits(0.05, 2, 0.5, 7, {2: edit})
    assert [seen["lrs"][e][0] for e in range(1, 8)] == expected
    metrics = metrics_of(run.path)
    assert [m["lr"] for m in metrics] == expected
    assert {m["epoch"]: m["edit"] for m in metrics if "edit" in m} == {
        2: {"lr": 0.02, "step_size": 3, "gamma": 0.25}
    }
    info = read_run(run.path)
    assert info.status is Status.COMPLETED and info.edits == {2: edit}
    decisions = [(e.decision, e.epoch) for e in events_of(run.path) if isinstance(e, Decision)]
    assert decisions == [("queued", 2), ("applied", 2)]
    # The record reads in order: epoch 2's line, then the edit applied after it.
    order = [
        ("epoch", e.epoch) if isinstance(e, EpochEnd) else ("applied", e.epoch)
        for e in events_of(run.path)
        if isinstance(e, EpochEnd) or (isinstance(e, Decision) and e.decision == "applied")
    ]
    assert order[1:3] == [("epoch", 2), ("applied", 2)]


def test_an_edit_line_appended_by_hand_is_applied_too(tmp_path: Path):
    model, optimizer, scheduler = make_model(lr=0.05, step_size=2, gamma=0.5)

    def on_batch(run, step):
        if run.epoch == 1 and step == 1:
            request = EditRequest(new_request_id(), ScheduleEdit(gamma=0.1), "by hand")
            append_line(run.path / CONTROL_FILE, encode_request(request))

    with steplr_tui.track(optimizer, scheduler, runs_dir=tmp_path, epochs=4) as run:
        seen = train(run, model, optimizer, scheduler, 4, on_batch)
    assert seen["edits"][1] == ScheduleEdit(gamma=0.1)
    expected = lrs_with_edits(0.05, 2, 0.5, 4, {1: ScheduleEdit(gamma=0.1)})
    assert [m["lr"] for m in metrics_of(run.path)] == expected


def test_a_stop_request_ends_the_run_stopped_without_the_partial_epoch(tmp_path: Path):
    model, optimizer, scheduler = make_model()
    stopped_at = {}
    with steplr_tui.track(optimizer, scheduler, runs_dir=tmp_path, epochs=5) as run:
        for epoch in range(run.epoch, 6):
            for step, (x, y) in enumerate(batches(epoch), start=1):
                if epoch == 2 and step == 3:
                    send(run.path, StopRequest(new_request_id(), sender_name("shell"), ""))
                    # The run reads control.jsonl between batches (at most every 50 ms).
                    deadline = time.monotonic() + HANG_GUARD_S
                    while not run.should_stop():
                        assert time.monotonic() < deadline, "the stop request was never read"
                        time.sleep(0.005)
                if run.should_stop():
                    stopped_at = {"epoch": epoch, "step": step}
                    break
                loss = nn.functional.cross_entropy(model(x), y)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                run.log_batch(loss)
            scheduler.step()
            run.end_epoch()  # raises RunStopped once stopped; the with block swallows it
        pytest.fail("the loop went on after the stop")  # pragma: no cover
    assert run.stopped and stopped_at == {"epoch": 2, "step": 3}
    info = read_run(run.path)
    assert info.status is Status.STOPPED
    assert "stopped by shell" in info.reason
    assert [m["epoch"] for m in info.metrics] == [1]
    (end,) = [e for e in events_of(run.path) if isinstance(e, RunEnded)]
    assert end.status is Status.STOPPED and end.epochs_done == 1 and end.batch == 3


def test_sigterm_stops_a_script_stopped(tmp_path: Path):
    script = tmp_path / "user_script.py"
    script.write_text(
        textwrap.dedent(
            """
            import sys
            import torch
            from torch import nn
            import steplr_tui

            torch.manual_seed(0)
            model = nn.Linear(20, 2)
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
            scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)
            x, y = torch.randn(64, 20), torch.randint(0, 2, (64,))
            with steplr_tui.track(optimizer, scheduler, epochs=100000) as run:
                for epoch in range(run.epoch, 100001):
                    for step in range(50):
                        if run.should_stop():
                            break
                        loss = nn.functional.cross_entropy(model(x), y)
                        optimizer.zero_grad()
                        loss.backward()
                        optimizer.step()
                        run.log_batch(loss)
                    scheduler.step()
                    run.end_epoch()
                    if epoch == 1:
                        print("epoch 1 done", flush=True)
            print(f"after the with block: stopped={run.stopped}", flush=True)
            """
        )
    )
    runs = tmp_path / "runs"
    proc = subprocess.Popen(
        [sys.executable, str(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "STEPLR_TUI_RUNS": str(runs), "PYTHONPATH": str(ROOT)},
    )
    try:
        assert proc.stdout.readline() == "epoch 1 done\n", proc.stderr.read()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=HANG_GUARD_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "after the with block: stopped=True" in out
    assert "Traceback" not in err
    (info,) = list_runs(runs)
    assert info.status is Status.STOPPED and info.reason == "stopped by SIGTERM"
    epochs = [m["epoch"] for m in info.metrics]
    assert epochs == list(range(1, len(epochs) + 1)) and len(epochs) >= 1
    (end,) = [e for e in events_of(info.path) if isinstance(e, RunEnded)]
    assert end.epochs_done == len(epochs)  # the epoch it stopped in is not recorded


def test_a_failure_inside_the_block_is_recorded_failed_and_raised(tmp_path: Path):
    _model, optimizer, scheduler = make_model()
    with (
        pytest.raises(ValueError, match="bad batch"),
        steplr_tui.track(optimizer, scheduler, runs_dir=tmp_path) as run,
    ):
        run.log_batch(1.0)
        raise ValueError("bad batch\nsecond line")
    info = read_run(run.path)
    assert info.status is Status.FAILED and info.reason == "ValueError: bad batch"


# ---- misuse: one line each, saying what to do -------------------------------------------


def one_line(excinfo) -> str:
    text = str(excinfo.value)
    assert text and "\n" not in text
    return text


def test_something_that_is_not_a_scheduler_is_refused(tmp_path: Path):
    model = nn.Linear(4, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(TrackingError) as excinfo:
        steplr_tui.track(optimizer, {"step_size": 2}, runs_dir=tmp_path)
    text = one_line(excinfo)
    assert "torch.optim.lr_scheduler scheduler, or None" in text and "dict" in text
    assert not list(tmp_path.iterdir())  # no run folder for a run that never was


def test_a_scheduler_of_another_optimizer_is_refused(tmp_path: Path):
    _model, optimizer, _scheduler = make_model()
    _other, _other_opt, other_scheduler = make_model()
    with pytest.raises(TrackingError) as excinfo:
        steplr_tui.track(optimizer, other_scheduler, runs_dir=tmp_path)
    assert "another optimizer" in one_line(excinfo)


def test_end_epoch_twice_or_before_any_batch_is_refused(tmp_path: Path):
    _model, optimizer, scheduler = make_model()
    with steplr_tui.track(optimizer, scheduler, runs_dir=tmp_path) as run:
        scheduler.step()
        with pytest.raises(TrackingError) as excinfo:
            run.end_epoch()
        assert "no log_batch()" in one_line(excinfo) and "epoch 1" in str(excinfo.value)
        run.log_batch(0.5)
        run.end_epoch()
        with pytest.raises(TrackingError) as excinfo:
            run.end_epoch()  # twice in epoch 2's place, with no batch between
        assert "no log_batch()" in one_line(excinfo)
    assert [m["epoch"] for m in metrics_of(run.path)] == [1]
    assert read_run(run.path).status is Status.COMPLETED


def test_end_epoch_before_scheduler_step_is_refused(tmp_path: Path):
    _model, optimizer, scheduler = make_model()
    with steplr_tui.track(optimizer, scheduler, runs_dir=tmp_path) as run:
        run.log_batch(0.5)
        with pytest.raises(TrackingError) as excinfo:
            run.end_epoch()
        text = one_line(excinfo)
        assert "scheduler.step()" in text and "last_epoch is 0, expected 1" in text
        scheduler.step()
        scheduler.step()  # twice is as wrong as never
        with pytest.raises(TrackingError, match="last_epoch is 2, expected 1"):
            run.end_epoch()
    assert metrics_of(run.path) == []


def test_a_run_folder_that_cannot_be_written_is_refused(tmp_path: Path):
    _model, optimizer, scheduler = make_model()
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(TrackingError) as excinfo:
        steplr_tui.track(optimizer, scheduler, runs_dir=blocker / "runs")
    text = one_line(excinfo)
    assert str(blocker / "runs") in text and "runs_dir=" in text


def test_a_config_that_is_not_json_is_refused(tmp_path: Path):
    _model, optimizer, scheduler = make_model()
    with pytest.raises(TrackingError) as excinfo:
        steplr_tui.track(optimizer, scheduler, runs_dir=tmp_path, config={"model": nn.Linear(1, 1)})
    assert "JSON" in one_line(excinfo)


@pytest.mark.parametrize("name", ["lr", "epoch", "train_loss", "seconds", "edit", "steps"])
def test_a_reserved_metric_name_is_refused(tmp_path: Path, name: str):
    _model, optimizer, scheduler = make_model()
    with steplr_tui.track(optimizer, scheduler, runs_dir=tmp_path) as run:
        run.log_batch(0.5)
        scheduler.step()
        with pytest.raises(TrackingError) as excinfo:
            run.end_epoch(**{name: 1.0})
        assert f"metric name {name!r} is reserved" in one_line(excinfo)
        run.end_epoch(my_metric=torch.tensor(2.0))  # the same epoch, named right, is fine
    assert metrics_of(run.path)[0]["my_metric"] == 2.0


def test_a_metric_that_is_not_a_number_is_refused(tmp_path: Path):
    _model, optimizer, scheduler = make_model()
    with steplr_tui.track(optimizer, scheduler, runs_dir=tmp_path) as run:
        run.log_batch(0.5)
        scheduler.step()
        with pytest.raises(TrackingError) as excinfo:
            run.end_epoch(val_loss="low")
        assert "not a number" in one_line(excinfo)
        run.end_epoch()


@pytest.mark.parametrize(
    "loss",
    [
        pytest.param(torch.ones(3), id="vector"),
        pytest.param(torch.ones(2, 2, requires_grad=True), id="matrix requiring grad"),
        pytest.param(torch.ones(0), id="empty"),
        pytest.param("0.5", id="text"),
        pytest.param(None, id="None"),
        pytest.param(True, id="bool"),
    ],
)
def test_a_loss_that_is_not_one_number_is_refused(tmp_path: Path, loss):
    _model, optimizer, scheduler = make_model()
    with steplr_tui.track(optimizer, scheduler, runs_dir=tmp_path) as run:
        with pytest.raises(TrackingError) as excinfo:
            run.log_batch(loss)
        assert "log_batch() takes the batch's loss as" in one_line(excinfo)
        run.log_batch(0.25)
        scheduler.step()
        run.end_epoch()
    assert metrics_of(run.path)[0]["train_loss"] == 0.25


def test_run_stopped_and_tracking_error_are_exported():
    assert steplr_tui.RunStopped is RunStopped
    assert steplr_tui.TrackingError is TrackingError


# ---- resume ----------------------------------------------------------------------------


def test_resume_continues_the_folder_and_keeps_the_applied_edits(tmp_path: Path):
    """A script stops, saves its state; a second session restores optimizer and
    scheduler state_dicts and continues the same folder, on the edited schedule."""
    checkpoint = tmp_path / "my_checkpoint.pt"
    edit = ScheduleEdit(lr=0.03, step_size=1, gamma=0.5)
    epochs = 6

    def on_batch(run, step):
        if run.epoch == 1 and step == 2:
            send(run.path, EditRequest(new_request_id(), edit, sender_name("shell")))
        if run.epoch == 3 and step == 4:
            send(run.path, StopRequest(new_request_id(), sender_name("shell"), ""))
            deadline = time.monotonic() + HANG_GUARD_S
            while not run.should_stop():
                assert time.monotonic() < deadline, "the stop request was never read"
                time.sleep(0.005)

    # Session 1: the user's loop, saving a checkpoint after each end_epoch.
    model, optimizer, scheduler = make_model(lr=0.05, step_size=2, gamma=0.5)
    with steplr_tui.track(optimizer, scheduler, runs_dir=tmp_path / "runs", epochs=epochs) as run:
        for _epoch in range(run.epoch, epochs + 1):
            train_epoch(run, model, optimizer, on_batch)
            scheduler.step()
            run.end_epoch(test_acc=evaluate(model)[0])
            torch.save(
                {
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                },
                checkpoint,
            )
    first = read_run(run.path)
    assert first.status is Status.STOPPED and first.epochs_done == 2
    assert first.edits == {1: edit}

    # Session 2: new objects, as a new process has them, restored from the checkpoint.
    model, optimizer, scheduler = make_model(lr=0.05, step_size=2, gamma=0.5)
    state = torch.load(checkpoint, weights_only=True)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    assert scheduler.step_size == 1 and scheduler.gamma == 0.5  # the edit is in the state
    with steplr_tui.track(
        optimizer, scheduler, runs_dir=tmp_path / "runs", epochs=epochs, resume=run.path.name
    ) as resumed:
        assert resumed.path == run.path and resumed.epoch == 3
        seen = train(resumed, model, optimizer, scheduler, epochs)
    assert sorted(seen["lrs"]) == [3, 4, 5, 6]

    (info,) = list_runs(tmp_path / "runs")
    assert info.path == run.path and info.status is Status.COMPLETED
    assert [m["epoch"] for m in info.metrics] == [1, 2, 3, 4, 5, 6]
    assert [m["lr"] for m in info.metrics] == lrs_with_edits(0.05, 2, 0.5, epochs, {1: edit})
    assert info.edits == {1: edit}
    assert info.metrics[:2] == first.metrics
    # The second session was opened in the same events.jsonl, from epoch 3.
    opened = [e for e in events_of(run.path) if isinstance(e, RunOpened)]
    assert [e.first_epoch for e in opened] == [1, 3]


def test_resume_of_a_run_that_is_not_there_is_refused(tmp_path: Path):
    _model, optimizer, scheduler = make_model()
    with pytest.raises(TrackingError) as excinfo:
        steplr_tui.track(optimizer, scheduler, runs_dir=tmp_path, resume="nope")
    assert "resume='nope'" in one_line(excinfo)


def test_resume_drops_epochs_the_restored_state_had_not_reached(tmp_path: Path):
    """A kill after an epoch's metrics line but before the user's checkpoint: the epoch
    is trained again, and recorded once."""
    model, optimizer, scheduler = make_model()
    with steplr_tui.track(optimizer, scheduler, runs_dir=tmp_path, epochs=3) as run:
        train_epoch(run, model, optimizer)
        scheduler.step()
        run.end_epoch()
        saved = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}
        train_epoch(run, model, optimizer)
        scheduler.step()
        run.end_epoch()  # recorded, but the "checkpoint" above is from epoch 1
    model, optimizer, scheduler = make_model()
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    with steplr_tui.track(optimizer, scheduler, runs_dir=tmp_path, resume=run.path) as resumed:
        train(resumed, model, optimizer, scheduler, 3)
    info = read_run(run.path)
    assert [m["epoch"] for m in info.metrics] == [1, 2, 3]
    assert info.status is Status.COMPLETED


def test_end_epoch_after_the_stop_raises_run_stopped_which_the_block_swallows(tmp_path):
    _model, optimizer, scheduler = make_model()
    with steplr_tui.track(optimizer, scheduler, runs_dir=tmp_path) as run:
        run.log_batch(0.5)
        send(run.path, StopRequest(new_request_id(), "test", "enough"))
        deadline = time.monotonic() + HANG_GUARD_S
        while not run.should_stop():
            assert time.monotonic() < deadline
            time.sleep(0.005)
        scheduler.step()
        with pytest.raises(RunStopped):
            run.end_epoch()
        run.end_epoch()  # and again, uncaught: the with block takes it
    info = read_run(run.path)
    assert info.status is Status.STOPPED and info.reason == "enough" and info.metrics == []


class _Ranks:
    """Stands in for torch.distributed between two ranks checked one after the other:
    `max` gives the largest stop code either rank put in."""

    world_size, rank = 2, 0

    def __init__(self) -> None:
        self.codes: list[int] = []

    def max(self, value: int) -> int:
        self.codes.append(value)
        return max(self.codes)


@pytest.mark.parametrize(
    ("told", "said"),
    [
        ("stopped by SIGTERM", "stopped by SIGTERM"),
        ("stopped by the user", "stopped: another rank of the job was told to stop"),
    ],
)
def test_a_rank_that_saw_nothing_says_why_another_rank_stopped_the_job(told, said):
    """torchrun signals every rank, not all at once: rank 0 may be told only by the others."""
    from steplr_tui.run.tracker import STOP_CHECK_STEPS, Tracker

    ranks = _Ranks()

    def tracker(stop) -> Tracker:
        opt = torch.optim.SGD(nn.Linear(2, 1).parameters(), lr=0.1)
        sched = torch.optim.lr_scheduler.StepLR(opt, 2, 0.1)
        return Tracker(opt, sched, emit=None, dist=ranks, external_stop=stop)

    other, zero = tracker(lambda: told), tracker(lambda: False)
    for _ in range(STOP_CHECK_STEPS):
        other.should_stop()
    for _ in range(STOP_CHECK_STEPS):
        zero.should_stop()
    assert other.stop_reason == told
    assert zero.stop_reason == said
