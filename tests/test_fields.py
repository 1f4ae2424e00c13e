"""What the parameter fields show and when they send, without a terminal (issue 23)."""

from __future__ import annotations

from steplr_tui.runfolder import (
    Decision,
    RunEnded,
    RunOpened,
    Status,
)
from steplr_tui.runfolder.params import TrainConfig
from steplr_tui.runfolder.schedule import ScheduleEdit
from steplr_tui.viewer.draft import SteeringDraft
from steplr_tui.viewer.fields import (
    LOADING,
    NOT_APPLICABLE,
    UNKNOWN,
    FieldsModel,
    Shown,
    record_values,
)
from steplr_tui.viewer.run_view import RunView, status_text
from steplr_tui.viewer.widgets.run_log import event_lines
from tests.fakes import epoch_events, opened, scripted_events

CONFIG = TrainConfig(epochs=6, step_size=2, gamma=0.1, lr=0.001)
EDIT = ScheduleEdit(lr=0.02, step_size=3)


def edited_run(end: bool = False) -> list:
    """Two epochs, lr and step_size edited at the first boundary (from the shell)."""
    events = scripted_events(CONFIG, 2, {1: EDIT})
    if end:
        events.append(RunEnded(Status.STOPPED, "stopped by shell 1@box", 2, 1.0))
    return events


def shown(view: RunView) -> dict[str, str]:
    return {n: s.text for n, s in record_values(view).items() if n in ("lr", "step_size", "gamma")}


def test_live_finished_and_attached_midway_show_the_same_values():
    live = RunView()
    live.apply_all(edited_run())
    finished = RunView()
    finished.apply_all(edited_run(end=True))
    midway = RunView()  # attached after the edit: the replay brings it
    midway.apply_all(edited_run()[:1] + edited_run()[1:])
    want = {"lr": "0.02", "step_size": "3", "gamma": "0.1"}
    assert shown(live) == shown(finished) == shown(midway) == want


def test_a_running_run_shows_what_is_queued_for_its_next_boundary():
    view = RunView()
    view.apply_all(scripted_events(CONFIG, 1))
    view.apply(Decision("r1", "edit", "queued", epoch=2, edit=ScheduleEdit(gamma=0.5)))
    assert shown(view)["gamma"] == "0.5"


def test_a_value_the_record_does_not_have_is_unknown_never_a_default():
    view = RunView()
    config = {"optimizer": "adadelta", "lr": 1.0, "step_size": 1, "gamma": 0.7, "epochs": None}
    view.apply(RunOpened("/runs/x", config, kind="script"))
    values = record_values(view)
    assert values["batch_size"] == Shown("", UNKNOWN)
    assert values["epochs"] == Shown("", UNKNOWN)
    assert values["seed"] == Shown("", UNKNOWN) and values["model"] == Shown("", UNKNOWN)
    assert values["optimizer"] == Shown("adadelta")  # what it used, though a new run can't
    assert values["momentum"] == Shown("", NOT_APPLICABLE)
    assert values["lr"] == Shown("1.0")
    builtin = RunView()
    builtin.apply(opened(CONFIG))  # Adam has no momentum, whatever the config says
    assert record_values(builtin)["momentum"] == Shown("", NOT_APPLICABLE)
    sgd = RunView()
    sgd.apply(opened(CONFIG.with_values(optimizer="sgd", momentum=0.8)))
    assert record_values(sgd)["momentum"] == Shown("0.8")


def test_until_the_record_is_read_every_field_says_loading_and_nothing_offers_to_start():
    view = RunView(loading="20250101-120000-abcd")
    assert set(record_values(view).values()) == {Shown("", LOADING)}
    line = status_text(view, "device auto", "data auto")
    assert line == "loading the run 20250101-120000-abcd…" and "ctrl+r" not in line
    view.apply(opened(CONFIG))
    assert view.loading is None and record_values(view)["lr"] == Shown("0.001")


def test_a_field_the_user_did_not_type_in_follows_the_run_and_never_sends():
    view = RunView()
    view.apply_all(scripted_events(CONFIG, 1))
    model = FieldsModel()
    draft = SteeringDraft(sender="viewer 1@box", fields=model)
    texts = {"lr": "", "step_size": "", "gamma": ""}
    texts.update({n: s.text for n, s in model.to_write(view, texts, everything=True).items()})
    # The shell edits lr; the run applies it.
    view.apply_all(epoch_events(2, 0.02, ScheduleEdit(lr=0.02)))
    written = model.to_write(view, texts)
    assert written == {"lr": Shown("0.02")}
    texts.update({n: s.text for n, s in written.items()})
    # Leaving the field (tab) sends nothing: the user never typed there.
    assert draft.commit(view, "lr", texts["lr"]) is None
    # Even the stale text a field once showed is no edit of the user's.
    assert draft.commit(view, "lr", "0.001") is not None  # typed: it differs from 0.02
    # A field being typed in is never written to.
    texts["gamma"] = "0.3"
    view.apply_all(epoch_events(3, 0.02, ScheduleEdit(gamma=0.2)))
    assert "gamma" not in model.to_write(view, texts)


def test_an_edit_that_can_no_longer_apply_is_told():
    view = RunView()
    view.apply_all(scripted_events(CONFIG, 5))
    model = FieldsModel()
    texts = {n: s.text for n, s in model.to_write(view, {"lr": "", "step_size": "", "gamma": ""},
                                                     everything=True).items()}  # fmt: skip
    texts["gamma"] = "0.3"  # typed, not yet committed
    view.apply(RunEnded(Status.COMPLETED, "", 6, 3.0))
    lines = model.ended(view, texts, ["step_size 4"])
    assert lines[0] == "edit step_size 4 was not applied: the run ended before it read it"
    assert lines[1].startswith("typed gamma 0.3 was not sent: the run ended after epoch 5")
    assert model.lost_subtitle(texts).startswith("typed gamma 0.3 was not sent")
    assert model.lost_subtitle({**texts, "gamma": "0.4"}) == ""  # typed again: read


def test_what_this_dashboard_asked_for_is_said_to_come_from_it():
    me = "viewer 24359@vm"
    end = RunEnded(Status.STOPPED, f"stopped by {me}", 3, 1.0)
    assert event_lines(end, me) == ["Run stopped after 3 epochs: stopped from this dashboard."]
    assert event_lines(end, "viewer 1@other") == [f"Run stopped after 3 epochs: stopped by {me}."]
    stop = Decision("s1", "stop", "applied", sender=me)
    assert "(from this dashboard)" in event_lines(stop, me)[0]


def test_a_viewer_that_falls_behind_takes_everything_new_at_once():
    """Defect 9: the panes trailed the run by epochs under load, working through a queue
    of messages; now one message carries whatever arrived until the screen reads it."""
    from steplr_tui.viewer.sources import Mailbox

    posted = []
    mailbox = Mailbox(7, posted.append)
    batches = [epoch_events(e, 0.001) for e in (1, 2, 3)]
    for batch in batches:
        mailbox.deliver(batch)  # the screen is busy: nothing is read meanwhile
    (message,) = posted
    assert message.source_id == 7
    assert message.events == [e for batch in batches for e in batch]  # the newest state
    mailbox.deliver(batches[0])  # read: the next event is a message of its own
    assert len(posted) == 2 and posted[1].events == batches[0]


def test_the_log_keeps_up_with_the_status_line_and_plots_skip_frames_while_keys_come():
    from steplr_tui.viewer.screens.cadence import Cadence

    cadence = Cadence()
    cadence.drew({"lr", "log"}, now=100.0)
    held = cadence.held({"lr", "loss", "log", "status"}, True, False, now=100.3)
    assert "log" not in held and held >= {"lr", "loss"}  # plots: every PLOT_INTERVAL_S
    # A key in the last moments: the plots wait, so the key is drawn first.
    held = cadence.held({"lr", "log"}, True, False, now=200.0, typed_at=199.8)
    assert held == {"lr"}
    assert cadence.held({"lr", "log"}, True, False, now=300.0, typed_at=199.8) == set()
