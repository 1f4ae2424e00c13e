"""What starts a run, handed to the viewer by the command line.

The viewer imports nothing of the run side (which brings torch): it trains a job in
its thread worker, starts a detached run and warms torch up only through a `Starter`,
which `steplr_tui.cli.run_side` builds. A viewer without one (a test's, with a
trainer of its own) can still attach to runs and show them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from steplr_tui.runfolder.branch import BranchPlan
from steplr_tui.runfolder.events import Event
from steplr_tui.runfolder.job import Job
from steplr_tui.runfolder.params import TrainConfig

# A job, its events' sink, and the stop check it polls (a reason, True, or False).
TrainFn = Callable[[Job, Callable[[Event], None], Callable[[], "bool | str"]], Any]


class StartError(Exception):
    """A run could not be started; the message says why, in one line."""


@dataclass(frozen=True)
class Starter:
    """The run side, as the viewer may use it.

    `train` runs a job in the app's thread worker; `detach` starts one in a process of
    its own and returns its folder (raising StartError when it cannot); `branch` makes
    a checked branch's folder in a runs directory and starts it detached, returning its
    folder (StartError); `warm_up` imports torch ahead of a run and says which device
    'auto' picks.
    """

    train: TrainFn
    detach: Callable[[TrainConfig, Path, Path | None], Path] | None = None
    warm_up: Callable[[], str] | None = None
    branch: Callable[[BranchPlan, Path], Path] | None = None


def no_trainer(job: Job, emit: Callable[[Event], None], should_stop: Callable[[], Any]) -> Any:
    """The trainer of a viewer started without the run side: the run fails, saying so."""
    raise StartError("this viewer has no run side: start runs with steplr-tui")
