"""A user's script as a trial of a sweep: `steplr_tui.join_sweep(...)` asks the study for
the trial's lr, step_size and gamma, and `track(..., trial=trial)` reports each epoch's
objective to it, so its pruner can stop the run (PRUNED).

- Launched by `steplr-tui sweep --script`, a script gets its trial from the sweep
  (`$STEPLR_TUI_SWEEP_TRIAL`), which also tells the study how it ended.
- Run by hand, `join_sweep(NAME)` asks the study for a new trial itself (the sweep's
  folder names the storage, or `storage=` does), and the `with` block tells the
  study how it ended.
- Under torch.distributed, rank 0 asks and every rank gets the same parameters.

`track(..., trial=)` also takes an `optuna.trial.Trial` of your own study: each epoch's
`test_acc` (or `objective=`) is reported, a pruned run ends PRUNED, and the `with`
block then raises `optuna.TrialPruned`, as Optuna's `optimize` expects.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from steplr_tui.run.distributed import DistContext
from steplr_tui.run.tracker import TrackingError
from steplr_tui.runfolder.paths import resolve_runs_dir
from steplr_tui.study.engine import (
    StudyError,
    TrialLink,
    ask,
    load_study,
    suggest,
    without_password,
)
from steplr_tui.study.space import SpaceError
from steplr_tui.study.spec import SweepSpec, read_spec, storage_url, sweep_folder


@dataclass
class SweepTrial:
    """One trial of a sweep: its number, its parameters, and the sweep's fixed ones."""

    link: TrialLink | None  # None on ranks other than 0
    spec: SweepSpec
    number: int
    params: dict[str, Any]  # lr, step_size, gamma
    dist: Any = None  # the job's DistContext: every rank gets rank 0's suggestions
    own: dict[str, Any] = field(default_factory=dict)  # the script's own dimensions

    @property
    def sweep(self) -> str:
        return self.spec.name

    # The script's own search, in the same study (Optuna's `suggest_*`): its
    # architecture, its optimizer. Under torch.distributed, call them on every rank.
    def suggest_float(self, name: str, low: float, high: float, **kwargs: Any) -> float:
        return self._suggest("suggest_float", name, low, high, **kwargs)

    def suggest_int(self, name: str, low: int, high: int, **kwargs: Any) -> int:
        return self._suggest("suggest_int", name, low, high, **kwargs)

    def suggest_categorical(self, name: str, choices: Any) -> Any:
        return self._suggest("suggest_categorical", name, choices)

    def _suggest(self, method: str, name: str, *args: Any, **kwargs: Any) -> Any:
        if name in ("lr", "step_size", "gamma") and name in self.params and name not in self.own:
            raise TrackingError(
                f"{name} is the sweep's own dimension: read it from trial.params[{name!r}]"
            )
        value = None
        if self.link is not None:
            optuna_trial = self.link._trial
            if optuna_trial is None:
                raise TrackingError(
                    f"trial {self.number} of {self.sweep} has no study to ask: call "
                    f"{method} before track()"
                )
            value = getattr(optuna_trial, method)(name, *args, **kwargs)
        if self.dist is not None:
            value = self.dist.broadcast(value)
        self.own[name] = value
        self.params[name] = value
        return value

    @property
    def config(self) -> dict[str, Any]:
        """The sweep's fixed training parameters with this trial's lr, step_size, gamma."""
        return {**self.spec.fixed, **self.spec.space.fixed, **self.params}


def join_sweep(
    sweep: str | os.PathLike[str] | None = None,
    *,
    storage: str | None = None,
    runs_dir: str | os.PathLike[str] | None = None,
) -> SweepTrial:
    """This script's trial of a sweep (see the module docstring); raises TrackingError
    with what to do when the sweep or its study cannot be found."""
    dist = DistContext.current()
    if dist is not None and not dist.is_main:
        shared = dist.broadcast(None)
        return SweepTrial(
            None, SweepSpec.from_dict(shared["spec"]), shared["number"], shared["params"], dist
        )
    try:
        trial = _join(sweep, storage, runs_dir)
    except (StudyError, SpaceError) as exc:
        if dist is not None:
            dist.broadcast(None)  # the other ranks fail too, instead of hanging
        raise TrackingError(f"join_sweep(): {exc}") from exc
    if dist is not None:
        dist.broadcast(
            {"spec": trial.spec.as_dict(), "number": trial.number, "params": trial.params}
        )
        trial.dist = dist
    return trial


def _join(sweep: Any, storage: str | None, runs_dir: Any) -> SweepTrial:
    given = TrialLink.from_env()
    if given is not None:  # launched by `steplr-tui sweep --script`: the sweep tells
        link = given.open()
        params = {**link.spec.space.fixed, **link.params}
        return SweepTrial(link, link.spec, link.number, params)
    if sweep is None:
        raise StudyError(
            "give the sweep's name (join_sweep('my-sweep')), or run the script through "
            "steplr-tui sweep --script"
        )
    folder = Path(sweep).expanduser()
    if not (folder / "sweep.json").is_file():
        folder = sweep_folder(resolve_runs_dir(str(runs_dir) if runs_dir else None), str(sweep))
    if storage is not None:
        storage = without_password(storage)  # kept in the environment, never on disk
    if (folder / "sweep.json").is_file():
        spec = read_spec(folder)
        url = storage or storage_url(spec, folder)
        name = spec.name
    elif storage is not None:
        url, name = storage, str(sweep)
    else:
        raise StudyError(
            f"no sweep {str(sweep)!r} in {folder.parent}: create it with steplr-tui sweep "
            "--script ..., or give storage= the study's URL"
        )
    study, spec = load_study(name, url)
    trial = ask(study)
    params = suggest(trial, spec.space)
    link = TrialLink(url, name, trial.number, spec.objective, owner=True, spec=spec)
    link._study, link._trial = study, trial
    link.beat()
    return SweepTrial(link, spec, trial.number, params)


class OptunaTrial:
    """An `optuna.trial.Trial` of the user's own study, as a run's trial: it reports,
    and a pruned run's block raises optuna.TrialPruned (Optuna tells the study)."""

    owner = False

    def __init__(self, trial: Any, objective: str = "test_acc") -> None:
        self.trial = trial
        self.objective = objective
        self.number = int(trial.number)

    # The test_acc the script gave, before the run recorded a fraction in percent: the
    # study is the user's own, and gets the user's own units.
    given_acc: float | None = None

    def report(self, epoch: int, metrics: dict[str, float]) -> str | None:
        value = metrics.get(self.objective)
        if self.objective == "test_acc" and self.given_acc is not None:
            value = self.given_acc
        if value is None or value != value:
            return None
        self.trial.report(float(value), epoch)
        if self.trial.should_prune():
            return f"pruned by the study's pruner after epoch {epoch} ({self.objective} {value:g})"
        return None

    def where(self, folder: Path | None) -> None:
        if folder is not None:
            self.trial.set_user_attr("run_folder", str(folder))

    def finish(self, status: Any, metrics: Any, reason: str) -> None:
        return None


def as_link(trial: Any) -> Any:
    """The tracker's view of `track(trial=...)`: a SweepTrial's link, or an Optuna trial."""
    if isinstance(trial, SweepTrial):
        return trial.link
    if all(hasattr(trial, name) for name in ("report", "should_prune", "number")):
        return OptunaTrial(trial)
    raise TrackingError(
        f"trial= takes what steplr_tui.join_sweep() returns, or an optuna.trial.Trial "
        f"(got {type(trial).__name__})"
    )


def check_params(trial: Any, lr: float, step_size: int | None, gamma: float | None) -> None:
    """The StepLR must be built with the trial's parameters, or the study learns nonsense."""
    if not isinstance(trial, SweepTrial):
        return
    built = {"lr": lr, "step_size": step_size, "gamma": gamma}
    for name, value in trial.params.items():
        if name in trial.own:
            continue  # the script's own dimension, suggested by itself
        if name in built and built[name] is None:
            raise TrackingError(
                f"trial {trial.number} of {trial.sweep} searches {name}, but the scheduler "
                f"given to track() has none: build a StepLR with trial.params"
            )
        if name in built and built[name] != value:
            raise TrackingError(
                f"the optimizer and StepLR have {name} {built[name]!r}, but trial "
                f"{trial.number} of {trial.sweep} asks for {value!r}: build them with "
                "trial.params"
            )
