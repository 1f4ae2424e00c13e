"""Issue 23 in a real terminal: a viewer attached to a detached run that the shell edits
(defects 1, 5 and 6), the real program in a pty."""

from __future__ import annotations

import json
from pathlib import Path

from steplr_tui.runfolder import CONTROL_FILE, EVENTS_FILE, Status
from steplr_tui.runfolder.reader import list_runs
from tests.helpers import (
    PtyProcess,
    cli,
    detach,
    env_for,
    epochs_done,
    kill_run,
    wait_status,
    wait_until,
)


def decisions(path: Path) -> list[dict]:
    """The run's decisions so far (a line being written as we read is skipped)."""
    out = []
    for line in (path / EVENTS_FILE).read_text().splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if event.get("type") == "decision":
            out.append(event)
    return out


def control_lines(path: Path) -> int:
    control = path / CONTROL_FILE
    return len(control.read_text().splitlines()) if control.exists() else 0


def test_a_viewer_of_a_shell_edited_run_sends_only_what_was_typed_and_says_what_was_lost(
    tmp_path: Path,
):
    path = detach(
        tmp_path, "--epochs", "40", "--batch-size", "16", "--step-size", "5", "--gamma", "0.5",
        "--lr", "0.005",
    )  # fmt: skip
    wait_until(lambda: epochs_done(path) >= 1, 120, "an epoch")
    view = PtyProcess(["attach", path.name], env_for(tmp_path), size=(120, 40))
    try:
        wait_until(lambda: b"attached to" in view.output, 30, "the viewer")
        # Defect 1: the shell edits lr and step_size while lr has focus; a tab through
        # the fields sends nothing.
        edit = cli(tmp_path, "edit", path.name, "--lr", "0.02", "--step-size", "3")
        assert edit.returncode == 0, edit.stderr
        wait_until(lambda: any(d["decision"] == "applied" for d in decisions(path)), 60, "edit")
        # The log says it (the LR pane's subtitle may skip a frame: a fast run decays on).
        wait_until(lambda: b"edit applied after epoch" in view.output, 20, "the viewer's log")
        view.send(b"\t")
        view.send(b"\x1b[Z")  # shift+tab: back to lr
        done = epochs_done(path)
        wait_until(lambda: epochs_done(path) > done, 60, "an epoch after the tabs")
        assert control_lines(path) == 1  # the shell's edit alone
        assert not any("viewer" in d.get("sender", "") for d in decisions(path))

        # Defect 6: gamma typed, not yet entered, when the run is stopped from the shell.
        view.send(b"\t\t" + b"\x7f" * 12 + b"0.3")
        wait_until(lambda: b"gamma 0.3" in view.output, 20, "the typed gamma")
        stop = cli(tmp_path, "stop", path.name)
        assert stop.returncode == 0, stop.stderr
        wait_status(path, Status.STOPPED, 60)
        wait_until(lambda: b"was not sent" in view.output, 20, "the viewer to say so")
        view.send(b"\x11")  # ctrl+q
        assert view.wait_exit(10) == 0
    finally:
        view.close()
        kill_run(path)
    assert control_lines(path) == 2  # the shell's edit and its stop: nothing from the viewer

    # Defect 5: until the record is read, nothing offers to start, and a ctrl+r sent as
    # soon as the app draws anything starts nothing.
    again = PtyProcess(["attach", path.name], env_for(tmp_path), size=(120, 40))
    try:
        wait_until(lambda: len(again.output) > 0, 30, "the first frame")
        again.send(b"\x12")  # ctrl+r
        wait_until(lambda: b"attached to" in again.output, 30, "the viewer")
        again.send(b"\x11")
        assert again.wait_exit(10) == 0
        assert b"ready: ctrl+r" not in again.output
        assert len(list_runs(tmp_path)) == 1  # no run was started from the defaults
    finally:
        again.close()
