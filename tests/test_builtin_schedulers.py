"""The built-in trainer's --scheduler: StepLR (the default, unchanged) and its
alternatives, each the torch class it names, with torch's plan written for the viewer."""

from __future__ import annotations

import pytest

from steplr_tui.cli.options import parse_options
from steplr_tui.run.trainer import train
from steplr_tui.runfolder import EpochEnd, LrPlan
from steplr_tui.runfolder.params import TrainConfig
from steplr_tui.runfolder.schedule import step_lrs
from tests.helpers import torch_lrs
from tests.synthetic import synthetic_data

CONFIG = TrainConfig(epochs=5, batch_size=128, step_size=2, gamma=0.5, lr=0.01, device="cpu")
DATA = synthetic_data(n_train=256, n_test=64)


def run(config):
    events = []
    train(config, events.append, should_stop=lambda: False, data=DATA, progress_interval=1.0)
    return events


@pytest.mark.parametrize(
    "values, kind",
    [
        ({"scheduler": "multistep", "milestones": (1, 3)}, "MultiStepLR"),
        ({"scheduler": "warmup-step", "warmup": 2}, "SequentialLR"),
        ({"scheduler": "cosine"}, "CosineAnnealingLR"),
    ],
)
def test_each_alternative_trains_with_torchs_schedule_and_plan(values, kind):
    config = CONFIG.with_values(**values).validated()
    events = run(config)
    used = [e.lr for e in events if isinstance(e, EpochEnd)]
    assert used == torch_lrs(config)
    (plan,) = [e for e in events if isinstance(e, LrPlan)]
    assert plan.kind == kind and [row[0] for row in plan.lrs] == used


def test_plateau_follows_the_test_accuracy():
    config = CONFIG.with_values(scheduler="plateau", step_size=1, epochs=4).validated()
    events = run(config)
    epochs = [e for e in events if isinstance(e, EpochEnd)]
    assert [e.lr for e in epochs] == torch_lrs(config, [e.test_acc for e in epochs])
    (plan,) = [e for e in events if isinstance(e, LrPlan)]
    assert plan.lrs == () and "factor 0.5" in plan.note


def test_step_stays_the_default_and_writes_no_plan():
    events = run(CONFIG)
    assert not [e for e in events if isinstance(e, LrPlan)]
    used = [e.lr for e in events if isinstance(e, EpochEnd)]
    assert used == step_lrs(CONFIG.lr, CONFIG.step_size, CONFIG.gamma, CONFIG.epochs)
    assert "scheduler" not in TrainConfig().as_dict()  # a StepLR run's record as before


@pytest.mark.parametrize(
    "argv, says",
    [
        (["--scheduler", "linear"], "--scheduler must be one of step, multistep"),
        (["--milestones", "3"], "--milestones goes with --scheduler multistep"),
        (["--scheduler", "multistep", "--milestones", "4,2"], "must be increasing"),
        (["--scheduler", "warmup-step", "--warmup", "5", "--epochs", "5"], "longer than the run"),
    ],
)
def test_bad_scheduler_flags_exit_2_in_one_line(capsys, argv, says):
    with pytest.raises(SystemExit) as exited:
        parse_options(argv)
    assert exited.value.code == 2
    err = capsys.readouterr().err.strip()
    assert says in err and "\n" not in err


def test_scheduler_flags_reach_the_config():
    options = parse_options(["--scheduler", "multistep", "--milestones", "2,4"])
    assert options.config.scheduler == "multistep" and options.config.milestones == (2, 4)
    assert options.config.as_dict()["milestones"] == [2, 4]


@pytest.mark.parametrize(
    "values",
    [
        {"scheduler": "multistep"},
        {"scheduler": "multistep", "milestones": (1, 4), "gamma": 0.3},
        {"scheduler": "warmup-step", "warmup": 1},
        {"scheduler": "warmup-step", "warmup": 3, "step_size": 1, "gamma": 0.7},
        {"scheduler": "cosine", "lr": 0.37},
        {"scheduler": "cosine", "epochs": 12},
    ],
)
def test_the_viewers_plan_of_each_kind_is_torchs_bit_for_bit(values):
    """The preview's pure-Python plan (no torch in the viewer) against torch's own."""
    from steplr_tui.runfolder.schedule import kind_lrs

    config = CONFIG.with_values(**values).validated()
    assert kind_lrs(
        config.scheduler,
        config.lr,
        config.step_size,
        config.gamma,
        config.epochs,
        config.milestones,
        config.warmup,
    ) == torch_lrs(config)


async def test_the_dashboard_previews_the_scheduler_the_flags_chose():
    from steplr_tui.runfolder.schedule import kind_lrs
    from steplr_tui.viewer.widgets.plots import LrPlot
    from tests.helpers import SIZE, make_app, wait_for

    config = TrainConfig(data_dir="/data/mnist", scheduler="warmup-step", warmup=2, epochs=8)
    app = make_app(lambda *a: None, config=config)
    async with app.run_test(size=SIZE) as pilot:
        pane = app.screen.query_one(LrPlot)
        want = kind_lrs("warmup-step", 0.001, 2, 0.1, 8, (), 2)
        await wait_for(pilot, lambda: pane.planned == want)
        assert "LinearLR warmup of 2 then StepLR" in str(pane.border_subtitle)


async def test_typing_a_steplr_value_draws_its_alternatives_faintly():
    from steplr_tui.runfolder.schedule import kind_lrs
    from steplr_tui.viewer.widgets.plots import LrPlot
    from tests.helpers import SIZE, make_app, wait_for

    app = make_app(lambda *a: None)
    async with app.run_test(size=SIZE) as pilot:
        pane = app.screen.query_one(LrPlot)
        await pilot.pause(0.2)
        assert pane.alternatives == []  # the screen as it opens: the staircase alone
        gamma = app.screen.query_one("#field-gamma")
        gamma.value = "0.5"
        await wait_for(pilot, lambda: len(pane.alternatives) == 3)
        assert dict(pane.alternatives)["cosine"] == kind_lrs("cosine", 0.001, 2, 0.5, 5)
        assert "━ cosine" in str(pane.border_title)
        gamma.value = "7"  # not a gamma: nothing to compare
        await wait_for(pilot, lambda: pane.alternatives == [])
