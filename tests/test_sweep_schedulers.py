"""A sweep that compares the built-in trainer's schedulers (`--scheduler step,cosine,
plateau`): the dimension, each trial's config, the grid, and which kind wins, by how
much. Without training."""

from __future__ import annotations

from dataclasses import replace

import pytest

from steplr_tui.cli.sweep import build_parser, new_spec
from steplr_tui.runfolder.params import TrainConfig
from steplr_tui.study.engine import TrialRow, create_study, suggest
from steplr_tui.study.report import by_scheduler, trials_csv
from steplr_tui.study.space import SpaceError
from steplr_tui.study.spec import SweepSpec
from tests.helpers import spec

KINDS = ("step", "cosine", "plateau")


def flags(*argv: str) -> SweepSpec:
    ns, rest = build_parser().parse_known_args(list(argv))
    return new_spec(ns, rest)


def test_the_flag_makes_a_dimension_that_round_trips():
    made = flags("--scheduler", "step,cosine,plateau", "--gamma", "0.1,0.5")
    assert made.schedulers == KINDS
    again = SweepSpec.from_dict(made.as_dict())
    assert again.schedulers == KINDS
    assert "schedulers" not in flags("--gamma", "0.1,0.5").as_dict()  # as every sweep before


@pytest.mark.parametrize(
    "argv, says",
    [
        (["--scheduler", "step,linear"], "--scheduler takes a list of step, multistep"),
        (["--scheduler", "step,step"], "each once"),
        (["--scheduler", "step,"], "an empty item"),
    ],
)
def test_a_bad_scheduler_list_is_one_line(argv, says):
    with pytest.raises(SpaceError, match=says) as excinfo:
        flags(*argv)
    assert "\n" not in str(excinfo.value)


def test_a_script_sweep_refuses_the_scheduler_dimension(tmp_path):
    script = tmp_path / "train.py"
    script.write_text("")
    with pytest.raises(SpaceError, match="a --script builds its own"):
        flags("--scheduler", "step,cosine", "--script", str(script))


def test_each_trial_trains_with_the_scheduler_its_study_suggested(tmp_path):
    made = replace(spec(name="kinds", lr="1e-4:1e-2:log"), schedulers=KINDS).checked()
    study = create_study(made, f"sqlite:///{tmp_path / 'study.db'}")
    seen = set()
    for _ in range(12):
        trial = study.ask()
        params = suggest(trial, made.space, made.schedulers)
        config = made.trial_config(params, TrainConfig(device="cpu"))
        assert config.scheduler == params["scheduler"] in KINDS
        seen.add(config.scheduler)
        study.tell(trial, 90.0)
    assert seen == set(KINDS)


def test_a_grid_sweep_covers_every_scheduler_and_value_once(tmp_path):
    made = replace(spec(name="grid", gamma="0.1,0.5"), schedulers=KINDS).checked()
    assert made.sampler_used == "grid" and made.trials_planned == 6
    study = create_study(made, f"sqlite:///{tmp_path / 'study.db'}")
    points = set()
    for _ in range(6):
        trial = study.ask()
        params = suggest(trial, made.space, made.schedulers)
        points.add((params["scheduler"], params["gamma"]))
        study.tell(trial, 90.0)
    assert points == {(k, g) for k in KINDS for g in (0.1, 0.5)}


def row(number: int, kind: str, value: float | None, state: str = "COMPLETE") -> TrialRow:
    return TrialRow(
        number=number,
        state=state,
        params={"lr": 0.001, "step_size": 2, "gamma": 0.1, "scheduler": kind},
        curve={},
        value=value,
        status="COMPLETED",
        reason="",
        run_folder="",
        host="box",
        started=None,
        finished=None,
    )


def test_the_sweep_says_which_scheduler_wins_and_by_how_much():
    made = replace(spec(name="win", gamma="0.1,0.5"), schedulers=KINDS)
    rows = [
        row(0, "step", 91.0),
        row(1, "step", 90.0),
        row(2, "cosine", 92.5),
        row(3, "cosine", 91.5),
        row(4, "cosine", 80.0),
        row(5, "plateau", 70.0, state="PRUNED"),
    ]
    lines = by_scheduler(made, rows)
    assert lines == [
        "cosine: best 92.50% · median 91.50% of 3 · +1.50 over step",
        "step: best 91.00% · median 90.50% of 2 · -1.50 behind cosine",
        "plateau: no finished trial yet",
    ]
    assert trials_csv(made, rows).splitlines()[0].endswith(",scheduler")
    assert by_scheduler(spec(name="plain", gamma="0.1,0.5"), rows) == []  # a sweep of StepLR only


def test_the_schedulers_alone_are_a_search_space():
    made = flags("--scheduler", "step,cosine")
    assert made.schedulers == ("step", "cosine") and not made.space.searched
    assert made.sampler_used == "grid" and made.trials_planned == 2
