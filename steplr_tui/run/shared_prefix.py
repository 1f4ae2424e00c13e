"""Sweeps that share their prefixes: trials that agree on everything up to their first
decay are trained that far once, and branched from there.

Trials of a sweep with the same lr, seed, model, data, batch size, optimizer and
machine settings are identical, bit for bit, until their first decay, which comes
after epoch `step_size`. So for each such group (a *key*), one prefix run trains
with a constant lr (StepLR(step_size=P, gamma=1.0), where P is the largest
step_size of the sweep below its epochs) for P epochs, keeping a checkpoint after
each step_size the sweep can ask for. A trial with step_size s and gamma g is
then a branch of it after epoch s with the edit lr = lr*g, step_size s, gamma g:
after epoch s's scheduler.step(), the very float StepLR(s, g) would have set
(`group["lr"] * gamma`), and StepLR's attributes from then on. Its final accuracy
equals its independent twin's, bit for bit on the CPU.

This only pays when keys repeat: the sweep's lr must be a value or a list (a grid
sampler, or TPE/random over listed lrs). A trial whose step_size is not below its
epochs never decays, so it is not shared; nor is a script's trial.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from steplr_tui.run.branch import create_branch, plan_branch
from steplr_tui.run.launch import Launched, launch
from steplr_tui.runfolder import CONTROL_FILE, StopRequest, append_line, encode_request
from steplr_tui.runfolder.checkpoints import KeepPolicy, kept_checkpoints
from steplr_tui.runfolder.params import TrainConfig
from steplr_tui.runfolder.reader import process_alive, read_status
from steplr_tui.runfolder.requests import new_request_id, sender_name
from steplr_tui.runfolder.schedule import ScheduleEdit

PREFIX_KEY = "sweep_prefix"  # config.json of a prefix run: {"sweep": name, "epochs": [...]}


def branch_points(spec: Any, config: TrainConfig) -> list[int]:
    """The epochs a sweep's trials may branch after: its step_sizes below the epochs.
    Empty where sharing cannot pay (a script, an lr range, no step_size list)."""
    if getattr(spec, "script", ()) or not getattr(spec, "share", True):
        return []
    lr = spec.space["lr"]
    if lr.kind != "choice":
        return []  # an lr range: no two trials share an lr
    grid = spec.space["step_size"].grid()
    if not grid:
        return []
    return sorted({int(s) for s in grid if 1 <= int(s) < config.epochs})


def prefix_config(config: TrainConfig, points: list[int]) -> TrainConfig:
    """The prefix run: the trial's config with a constant lr, up to the last branch point."""
    last = max(points)
    return config.with_values(step_size=last, gamma=1.0, epochs=last)


def key_of(config: TrainConfig) -> tuple:
    """What must be equal for two trials to share their prefix: all but the schedule."""
    values = config.as_dict()
    for name in ("step_size", "gamma", "epochs"):
        values.pop(name)
    return tuple(sorted((k, repr(v)) for k, v in values.items()))


def trial_edit(config: TrainConfig) -> ScheduleEdit:
    """The edit that turns the prefix, after epoch step_size, into the trial: StepLR's
    own decay of the lr (one float multiplication), and its step_size and gamma."""
    return ScheduleEdit(lr=config.lr * config.gamma, step_size=config.step_size, gamma=config.gamma)


@dataclass
class Prefix:
    """One prefix run of a sweep: its folder, its process, the epochs it keeps."""

    key: tuple
    path: Path
    pid: int
    points: list[int]

    def checkpoint(self, epoch: int) -> Path | None:
        return kept_checkpoints(self.path).get(epoch)

    @property
    def over(self) -> bool:
        """Its process has ended (or its record says so): no more checkpoints will come."""
        status, _, _ = read_status(self.path)
        return status.final or not process_alive(self.pid, None)


@dataclass
class Waiting:
    """A trial asked of the study, waiting for its prefix's checkpoint."""

    number: int
    params: dict[str, Any]
    config: TrainConfig
    prefix: Prefix


@dataclass
class SharedPrefixes:
    """A sweep worker's prefix runs and the trials that wait on them."""

    sweep: str
    runs_dir: Path
    prefixes: dict[tuple, Prefix] = field(default_factory=dict)
    waiting: dict[int, Waiting] = field(default_factory=dict)
    epochs_trained: int = 0  # by prefixes, for the sweep's account

    def share(
        self, number: int, params: dict[str, Any], config: TrainConfig, points: list[int], env
    ) -> Prefix | None:
        """Make the trial wait on its prefix (started now if it has none yet); None when
        the trial is to run on its own (its step_size is no branch point)."""
        if config.step_size not in points or config.scheduler != "step":
            return None  # only StepLR trials agree until their first decay
        key = key_of(config)
        prefix = self.prefixes.get(key)
        if prefix is None or (prefix.over and prefix.checkpoint(config.step_size) is None):
            prefix = self._start(key, config, points, env)
        self.waiting[number] = Waiting(number, params, config, prefix)
        return prefix

    def _start(self, key: tuple, config: TrainConfig, points: list[int], env) -> Prefix:
        meta = {
            PREFIX_KEY: {"sweep": self.sweep, "epochs": points},
            "keep_checkpoints": KeepPolicy(epochs=frozenset(points)).as_json(),
        }
        launched = launch(
            prefix_config(config, points), self.runs_dir, meta=meta, env=env, reap=True
        )
        prefix = Prefix(key, launched.path, launched.pid, points)
        self.prefixes[key] = prefix
        return prefix

    @property
    def running(self) -> int:
        """Prefix runs still training (each takes one of the worker's slots)."""
        return sum(1 for p in self.prefixes.values() if not p.over)

    def ready(self) -> tuple[Waiting, Path | None] | None:
        """The first waiting trial that can start: with its checkpoint, or (None) on its
        own because its prefix ended without reaching it."""
        for waiting in self.waiting.values():
            found = waiting.prefix.checkpoint(waiting.config.step_size)
            if found is not None:
                return waiting, found
            if waiting.prefix.over:
                return waiting, None
        return None

    def branch(self, waiting: Waiting, meta: dict[str, Any], env=None) -> Launched:
        """Start the waiting trial as a branch of its prefix (its own config recorded)."""
        self.waiting.pop(waiting.number, None)
        config = waiting.config
        plan = plan_branch(
            waiting.prefix.path, config.step_size, trial_edit(config), config, config.epochs
        )
        plan = replace(plan, config=config)
        folder = create_branch(plan, self.runs_dir, meta=meta)
        return launch(config, self.runs_dir, folder=folder, env=env, reap=True)

    def stop(self, why: str) -> list[int]:
        """Stop the prefix runs still training; the trials that waited (they never started)."""
        for prefix in self.prefixes.values():
            if not prefix.over:
                with contextlib.suppress(OSError):
                    append_line(
                        prefix.path / CONTROL_FILE,
                        encode_request(StopRequest(new_request_id(), sender_name("sweep"), why)),
                    )
        numbers = list(self.waiting)
        self.waiting.clear()
        return numbers


def epochs_saved(points: list[int], trials: list[TrainConfig]) -> tuple[int, int]:
    """(epochs independent trials train, epochs with shared prefixes), for a plan."""
    alone = sum(c.epochs for c in trials)
    shared = 0
    keys: dict[tuple, int] = {}
    for c in trials:
        if c.step_size in points:
            keys[key_of(c)] = max(points)
            shared += c.epochs - c.step_size
        else:
            shared += c.epochs
    return alone, shared + sum(keys.values())
