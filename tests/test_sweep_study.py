"""The sweep's study, without training: the search space and its messages, the sampler
chosen, the storage opened (or refused with what to check), the pruner wired to epoch
reports, and a run's end told as Optuna's states."""

from __future__ import annotations

import math
import re
import socket

import pytest

from steplr_tui.runfolder import Status
from steplr_tui.runfolder.params import TrainConfig
from steplr_tui.study.engine import (
    StudyError,
    TrialLink,
    create_study,
    load_study,
    outcome,
    read_trials,
    suggest,
    tell,
)
from steplr_tui.study.space import SpaceError, parse_dimension
from steplr_tui.study.spec import SweepSpec, read_spec, write_spec
from steplr_tui.study.table import sort_rows, status_of, trial_cells
from tests.helpers import space, spec


@pytest.mark.parametrize(
    ("name", "text", "kind", "values", "bounds"),
    [
        ("gamma", "0.5", "choice", (0.5,), None),
        ("gamma", "0.1, 0.3,0.5", "choice", (0.1, 0.3, 0.5), None),
        ("gamma", "0.5:0.95", "range", (), (0.5, 0.95)),
        ("lr", "1e-4:1e-1:log", "log", (), (1e-4, 1e-1)),
        ("step_size", "1:5", "range", (), (1, 5)),
        ("step_size", "2,4", "choice", (2, 4), None),
    ],
)
def test_a_dimension_is_a_value_a_list_or_a_range(name, text, kind, values, bounds):
    d = parse_dimension(name, text)
    assert d.kind == kind and d.values == values
    if bounds:
        assert (d.low, d.high) == bounds
    assert parse_dimension(name, d.describe()) == d  # written back as it was read


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("gamma", "0.1:2", "--gamma must be a number in (0, 1] (got '2')"),
        ("gamma", "0.9:0.1", "the range's low end must be below its high end"),
        ("gamma", "0.1,,0.2", "an empty item in the list"),
        ("gamma", "0.1,0.1", "0.1 is listed twice"),
        ("lr", "1e-4:1e-1:cubic", "a range is LOW:HIGH, or LOW:HIGH:log"),
        ("step_size", "1.5:3", "--step-size must be a whole number"),
        ("lr", "", "--lr is empty"),
    ],
)
def test_a_bad_dimension_says_what_is_wrong(name, text, message):
    with pytest.raises(SpaceError, match=re.escape(message)):
        parse_dimension(name, text)


def test_an_empty_search_space_is_refused_with_an_example():
    with pytest.raises(SpaceError, match=r"the search space is empty.*--gamma 0.1:0.9"):
        space(gamma="0.1", lr="0.001")


def test_the_sampler_is_a_grid_when_every_searched_dimension_is_a_list():
    grid = spec(gamma="0.1,0.5", step_size="1,2,3")
    assert grid.sampler_used == "grid" and grid.trials_planned == 6  # 2 x 3 points, not 8
    assert spec(gamma="0.1:0.9", step_size="1,2").sampler_used == "tpe"
    assert spec(step_size="1:3", trials=10).trials_planned == 3  # whole numbers are a grid
    with pytest.raises(SpaceError, match=r"--sampler grid needs a list.*gamma"):
        SweepSpec("g", space(gamma="0.1:0.9"), {}, 4, sampler="grid").checked()


def test_a_sweep_round_trips_through_its_folder(tmp_path):
    s = spec(gamma="0.1:0.9", lr="1e-4:1e-2:log")
    write_spec(tmp_path, s)
    back = read_spec(tmp_path)
    assert back.as_dict() == s.as_dict()
    config = back.trial_config({"lr": 0.003, "gamma": 0.4}, TrainConfig(device="cpu"))
    assert (config.lr, config.gamma, config.step_size, config.device) == (0.003, 0.4, 2, "cpu")


def url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'study.db'}"


def test_a_grid_study_visits_every_point_once(tmp_path):
    s = spec(gamma="0.1,0.5", step_size="1,2")
    study = create_study(s, url(tmp_path))
    seen = set()
    for _ in range(s.trials_planned):
        trial = study.ask()
        params = suggest(trial, s.space)
        seen.add((params["gamma"], params["step_size"], params["lr"]))
        study.tell(trial, 90.0)
    assert seen == {(g, k, 0.001) for g in (0.1, 0.5) for k in (1, 2)}


def test_the_same_name_with_another_space_is_refused(tmp_path):
    create_study(spec(gamma="0.1:0.9"), url(tmp_path))
    create_study(spec(gamma="0.1:0.9"), url(tmp_path))  # the same sweep: fine
    with pytest.raises(StudyError, match=r"already exists.*--join s"):
        create_study(spec(gamma="0.2:0.9"), url(tmp_path))
    _study, back = load_study("s", url(tmp_path))
    assert back.space == spec(gamma="0.1:0.9").space
    with pytest.raises(StudyError, match="no study 'other'"):
        load_study("other", url(tmp_path))


@pytest.mark.parametrize(
    "bad",
    ["sqlite:////no/such/folder/study.db", "postgresql://nobody@localhost:1/x", "nonsense://x"],
)
def test_a_storage_that_cannot_be_opened_says_what_to_check(bad):
    with pytest.raises(StudyError) as info:
        create_study(spec(gamma="0.1:0.9"), bad)
    text = str(info.value)
    assert text.startswith("cannot ")
    assert "check the URL" in text or "cannot create study" in text


def test_a_password_in_a_storage_url_is_never_shown():
    from steplr_tui.study.engine import masked

    assert masked("postgresql://alice:s3cret@db:5432/x") == "postgresql://alice:***@db:5432/x"


def test_a_journal_storage_works_too(tmp_path):
    study = create_study(spec(gamma="0.1:0.9"), f"journal:{tmp_path / 'journal.log'}")
    study.tell(study.ask(), 91.0)
    again, _ = load_study("s", f"journal:{tmp_path / 'journal.log'}")
    assert [r.value for r in read_trials(again)] == [91.0]


def run_trial(study, s, curve: list[float], status=Status.COMPLETED) -> TrialLink:
    trial = study.ask()
    suggest(trial, s.space)
    link = TrialLink("", s.name, trial.number, owner=True)
    link._study, link._trial = study, trial
    pruned = None
    for epoch, acc in enumerate(curve, start=1):
        pruned = link.report(epoch, {"test_acc": acc})
        if pruned:
            break
    end = Status.PRUNED if pruned else status
    link.finish(end, [{"test_acc": curve[-1]}], pruned or "")
    link.pruned = pruned
    return link


def test_the_median_pruner_stops_a_poor_trial_after_its_warmup_and_says_why(tmp_path):
    s = spec(gamma="0.1:0.9")
    study = create_study(s, url(tmp_path))
    for _ in range(4):  # the pruner waits for four trials
        assert run_trial(study, s, [80.0, 90.0, 92.0, 93.0]).pruned is None
    poor = run_trial(study, s, [50.0, 60.0, 65.0, 70.0])
    assert poor.pruned is not None and poor.pruned.startswith(
        "pruned: test_acc 60.00 after epoch 2"
    )
    assert "below the median 90.00 of 4 other trials at epoch 2" in poor.pruned
    rows = {r.number: r for r in read_trials(study)}
    assert rows[4].state == "PRUNED" and rows[4].curve == {1: 50.0, 2: 60.0}
    assert rows[4].status == "PRUNED" and rows[4].counted


@pytest.mark.parametrize(
    ("status", "by_hand", "state", "value"),
    [
        (Status.COMPLETED, False, "COMPLETE", 91.5),
        (Status.PRUNED, False, "PRUNED", None),
        (Status.STOPPED, True, "PRUNED", None),
        (Status.FAILED, False, "FAIL", None),
        (Status.INTERRUPTED, False, "FAIL", None),
    ],
)
def test_a_runs_end_is_told_as_optunas_state(status, by_hand, state, value):
    got = outcome(status, [{"test_acc": 91.5}], "test_acc", "why", by_hand)
    assert got[:2] == (state, value)


def test_a_completed_run_without_its_objective_fails():
    assert outcome(Status.COMPLETED, [{"test_acc": math.nan}], "test_acc", "")[0] == "FAIL"


def test_an_interrupted_trial_does_not_count_and_reads_so(tmp_path):
    s = spec(gamma="0.1:0.9")
    study = create_study(s, url(tmp_path))
    trial = study.ask()
    suggest(trial, s.space)
    tell(study, trial.number, Status.INTERRUPTED, None, "FAIL", "its process died")
    tell(study, trial.number, Status.COMPLETED, 99.0, "COMPLETE", "")  # told once only
    (row,) = read_trials(study)
    assert row.state == "FAIL" and not row.counted and status_of(row) == "INTERRUPTED"
    cells = trial_cells(s, row, None)
    assert cells[2] == "INTERRUPTED" and cells[4] == "2"


def test_rows_sort_best_first_with_the_unfinished_last(tmp_path):
    s = spec(gamma="0.1:0.9")
    study = create_study(s, url(tmp_path))
    for curve in ([70.0], [90.0], [80.0]):
        run_trial(study, s, curve)
    study.ask()  # running, nothing reported
    rows = read_trials(study)
    assert [r.number for r in sort_rows(rows, "last")] == [1, 2, 0, 3]
    assert [r.number for r in sort_rows(rows, "trial")] == [0, 1, 2, 3]
    assert socket.gethostname()  # the host a trial records is this one's


def test_a_trial_stopped_with_its_sweep_is_run_again_not_counted(tmp_path):
    s = spec(gamma="0.1:0.9")
    study = create_study(s, url(tmp_path))
    for status, state in ((Status.STOPPED, "FAIL"), (Status.FAILED, "FAIL")):
        trial = study.ask()
        suggest(trial, s.space)
        tell(study, trial.number, status, None, state, "why")
    stopped, failed = read_trials(study)
    assert not stopped.counted and status_of(stopped) == "STOPPED"
    assert failed.counted and status_of(failed) == "FAILED"


def test_a_sampled_trial_runs_at_the_precision_its_table_shows(tmp_path):
    from steplr_tui.study.report import best_params, trials_csv

    s = spec(gamma="0.1:0.9", lr="1e-4:1e-1:log", step_size="1:4")
    study = create_study(s, url(tmp_path))
    used = []
    for _ in range(12):
        trial = study.ask()
        params = suggest(trial, s.space)
        used.append(params)
        study.tell(trial, 90.0)
        # What the run trains with is what its row shows: 0.439, never 0.4387138442986005.
        assert params["gamma"] == float(f"{trial.params['gamma']:.3g}")
        assert params["lr"] == float(f"{trial.params['lr']:.3g}")
        assert 0.1 <= params["gamma"] <= 0.9 and 1e-4 <= params["lr"] <= 1e-1
        assert isinstance(params["step_size"], int)
    rows = read_trials(study)
    for row, params in zip(sorted(rows, key=lambda r: r.number), used, strict=True):
        cells = trial_cells(s, row, None)
        assert cells[5] == repr(params["gamma"])  # the table's gamma is the run's, whole
        assert best_params(s, row) == params and row.params == params
    assert "0.4387138442986005" not in trials_csv(s, rows)
    csv_gammas = [line.split(",")[5] for line in trials_csv(s, rows).splitlines()[1:]]
    assert all(len(g.rstrip("0").split(".")[-1]) <= 3 for g in csv_gammas)


def test_a_narrow_range_keeps_the_digits_it_needs_and_lists_stay_as_given():
    narrow = parse_dimension("gamma", "0.9001:0.9009")
    assert narrow.run_value(0.90043871) == 0.900439  # 0.9 would sample one value
    assert narrow.contains(narrow.run_value(0.90043871))
    listed = parse_dimension("gamma", "0.12345,0.5")
    assert listed.run_value(0.12345) == 0.12345
    assert parse_dimension("gamma", "0.1:0.9").run_value(0.4387138442986005) == 0.439
    assert parse_dimension("lr", "1e-4:1e-1:log").run_value(0.00043871384) == 0.000439
