"""steplr_tui.lightning.SteplrCallback: a LightningModule's run recorded, steered and stopped,
in one process and under Lightning's DDP strategy on the CPU (2 processes over gloo),
resumed from Lightning's own checkpoint. Every launch is bounded in time and killed
with all its processes (tests/helpers.py's Launch).

Lightning is an optional extra; without it these tests skip, saying so.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

pytest.importorskip(
    "lightning.pytorch",
    reason="the lightning extra is not installed: pip install -e '.[lightning]'",
)

from steplr_tui.cli.shell import send
from steplr_tui.runfolder import (
    EditRequest,
    RunOpened,
    Status,
    StopRequest,
    new_request_id,
    sender_name,
)
from steplr_tui.runfolder.reader import list_runs
from steplr_tui.runfolder.schedule import ScheduleEdit, lrs_with_edits
from tests.helpers import LAUNCH_LIMIT_S, Launch, events_of, facts_of, wait_until

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tests" / "lightning_script.py"
EDIT = ScheduleEdit(lr=0.02, step_size=3, gamma=0.25)
EXPECTED = lrs_with_edits(0.1, 2, 0.5, 4, {2: EDIT})  # the edit applies after epoch 2


def launch_script(base: Path, *args: str, requests: dict | None = None):
    """Run the script; at each pause (epoch, batch), send that request, then say go."""
    runs, facts = base / "runs", base / "facts"
    facts.mkdir(parents=True, exist_ok=True)
    pauses = [a for k, (e, b) in enumerate(requests or {}) for a in ("--pause", f"{e}:{b}")]
    devices = int(args[args.index("--devices") + 1]) if "--devices" in args else 1
    command = [sys.executable, str(SCRIPT), str(facts), *args, *pauses]
    with Launch(command, runs) as launch:
        for (epoch, batch), request in (requests or {}).items():
            paused = [facts / f"paused-{epoch}-{batch}-rank{r}" for r in range(devices)]
            wait_until(
                lambda p=paused: all(f.exists() for f in p),
                LAUNCH_LIMIT_S,
                f"{epoch}:{batch}",
                launch=launch,
            )
            (path,) = [p for p in runs.iterdir() if p.is_dir()]
            send(path, request)
            (facts / f"go-{epoch}-{batch}").touch()
        code = launch.wait()
        assert code == 0, launch.err[-3000:]
    return runs, facts


def edit() -> EditRequest:
    return EditRequest(new_request_id(), EDIT, sender_name("shell"))


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    return launch_script(tmp_path_factory.mktemp("pl-one"), requests={(2, 3): edit()})


def test_a_lightning_run_is_recorded_with_its_logged_metrics(one_process):
    runs, _facts = one_process
    (run,) = list_runs(runs)
    assert run.status is Status.COMPLETED
    assert [m["epoch"] for m in run.metrics] == [1, 2, 3, 4]
    assert all("val_acc" in m and "val_loss" in m for m in run.metrics)
    # The run's own train_loss: the mean of the logged batch losses, not the module's log.
    assert all(0 < m["train_loss"] < 5 for m in run.metrics)
    assert run.kind == "script" and run.config["model"] == "Classifier"
    assert run.config["epochs"] == 4 and run.config["step_size"] == 2


def test_a_live_edit_applies_after_lightnings_own_scheduler_step(one_process):
    runs, facts = one_process
    (run,) = list_runs(runs)
    assert [m["lr"] for m in run.metrics] == EXPECTED
    assert run.edits == {2: EDIT}
    starts = [f for f in facts_of(facts, 0) if f["event"] == "epoch_start"]
    # What the optimizer and the StepLR held as each epoch began: the edit, then StepLR
    # decaying by the new gamma every 3 epochs of its counter.
    assert [f["lr"] for f in starts] == EXPECTED
    assert [(f["step_size"], f["gamma"]) for f in starts][2] == (3, 0.25)


@pytest.fixture(scope="module")
def ddp(tmp_path_factory):
    stop = StopRequest(new_request_id(), sender_name("shell"), "")
    return launch_script(
        tmp_path_factory.mktemp("pl-ddp"),
        "--devices",
        "2",
        requests={(2, 3): edit(), (3, 2): stop},
    )


def test_under_lightnings_ddp_rank_0_records_and_every_rank_steers_alike(ddp):
    runs, facts = ddp
    (run,) = list_runs(runs)
    assert run.status is Status.STOPPED
    assert [m["epoch"] for m in run.metrics] == [1, 2]  # epoch 3 stopped part way
    assert [m["lr"] for m in run.metrics] == EXPECTED[:2]
    assert run.meta["distributed"]["world_size"] == 2
    opened = [e for _, e in events_of(run.path) if isinstance(e, RunOpened)]
    assert len(opened) == 1  # one writer
    ranks = [facts_of(facts, r) for r in range(2)]
    lrs = [[f["lr"] for f in rank if f["event"] == "epoch_start"] for rank in ranks]
    assert lrs[0] == lrs[1] == EXPECTED[:3]
    sums = [[f["checksum"] for f in rank if f["event"] == "epoch_end"] for rank in ranks]
    assert sums[0] == sums[1] and len(sums[0]) >= 2
    ends = [[f for f in rank if f["event"] == "end"] for rank in ranks]
    assert ends[0][0]["path"] == str(run.path) and ends[1][0]["path"] is None


def test_fit_from_a_lightning_checkpoint_continues_the_same_record(tmp_path):
    ckpts = tmp_path / "ckpt"
    runs, _facts = launch_script(tmp_path / "a", "--ckpt-dir", str(ckpts))
    (first,) = list_runs(runs)
    mid = ckpts / "epoch=1-step=24.ckpt"  # saved at the end of epoch 2
    assert mid.is_file(), sorted(p.name for p in ckpts.iterdir())
    launch_script(tmp_path / "a", "--resume", str(mid))
    (run,) = list_runs(runs)
    assert run.path == first.path and run.status is Status.COMPLETED
    assert [m["epoch"] for m in run.metrics] == [1, 2, 3, 4]
    assert [m["lr"] for m in run.metrics] == [m["lr"] for m in first.metrics]
    opened = [e.first_epoch for _, e in events_of(run.path) if isinstance(e, RunOpened)]
    assert opened == [1, 3]


def _fit(module, tmp_path) -> None:
    import lightning.pytorch as pl
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    from steplr_tui.lightning import SteplrCallback

    data = DataLoader(TensorDataset(torch.randn(32, 16), torch.zeros(32, dtype=torch.long)))
    trainer = pl.Trainer(
        max_epochs=1,
        accelerator="cpu",
        callbacks=[SteplrCallback(runs_dir=tmp_path)],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(module, data)


def test_a_module_with_two_schedulers_is_told_what_to_return(tmp_path):
    import torch

    from steplr_tui import TrackingError
    from tests.lightning_script import Classifier

    class Other(Classifier):
        def configure_optimizers(self):
            opt = torch.optim.SGD(self.parameters(), lr=0.1)
            lr_s = torch.optim.lr_scheduler
            return [opt], [lr_s.StepLR(opt, 2), lr_s.ExponentialLR(opt, 0.9)]

    with pytest.raises(
        TrackingError, match=re.escape("follows one scheduler (found: StepLR, ExponentialLR)")
    ):
        _fit(Other(), tmp_path)
    assert list_runs(tmp_path) == []  # nothing recorded for a run that could not start


def test_a_lightning_module_with_onecycle_per_step_is_watched_with_torchs_plan(tmp_path):
    """The shape of Lightning's own examples: OneCycleLR with "interval": "step"."""
    import lightning.pytorch as pl
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    from steplr_tui.lightning import SteplrCallback
    from steplr_tui.runfolder import EpochEnd, LrPlan
    from tests.lightning_script import Classifier

    used: list[float] = []

    class OneCycle(Classifier):
        def configure_optimizers(self):
            optimizer = torch.optim.SGD(self.parameters(), lr=0.1, momentum=0.9)
            total = self.trainer.estimated_stepping_batches
            cycle = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.5, total_steps=total)
            return {
                "optimizer": optimizer,
                "lr_scheduler": {"scheduler": cycle, "interval": "step"},
            }

        def on_before_optimizer_step(self, optimizer):
            used.append(optimizer.param_groups[0]["lr"])

    data = DataLoader(
        TensorDataset(torch.randn(32, 16), torch.zeros(32, dtype=torch.long)), batch_size=8
    )
    trainer = pl.Trainer(
        max_epochs=3,
        accelerator="cpu",
        callbacks=[SteplrCallback(runs_dir=tmp_path)],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(OneCycle(), data)
    (run,) = list_runs(tmp_path)
    assert run.status is Status.COMPLETED
    events = [e for _, e in events_of(run.path)]
    recorded = [x for e in events if isinstance(e, EpochEnd) for x in e.step_lrs]
    assert recorded == used and len(used) == 12  # every step's lr, as the optimizer used it
    plans = [e for e in events if isinstance(e, LrPlan)]
    assert plans[0].kind == "OneCycleLR" and plans[0].step_lrs == tuple(used)  # bit for bit
    assert plans[0].editable == ()  # watched only
