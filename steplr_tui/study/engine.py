"""The sweep's Optuna study: its storage, sampler and pruner, the trials asked and told,
and each trial's end as a run's status. No torch and no Textual.

- **Storage**: any URL Optuna takes (`sqlite:///study.db`, `postgresql://...`,
  `mysql+pymysql://...`), or `journal:PATH` for Optuna's journal file storage. By
  default the sweep's folder holds a SQLite file.
- **Sampler**: TPE by default (seeded), Optuna's grid sampler when every searched
  dimension is a list, or random.
- **Pruner**: the median pruner by default, on the objective (the test accuracy)
  reported after each epoch: a trial whose accuracy after epoch k is below the
  median of earlier trials' at epoch k stops there, PRUNED. It waits for 4 trials
  and never prunes after the first epoch alone.
- **Outcomes**: COMPLETED is told as COMPLETE with the last epoch's objective,
  PRUNED as PRUNED; a trial stopped by hand while its sweep runs counts as PRUNED
  too (stopped early, with its partial curve); FAILED and INTERRUPTED are FAIL.
  Each trial keeps the run's status and reason in its user attributes, and the run
  folder and host it trained in.
"""

from __future__ import annotations

import json
import math
import os
import re
import socket
import statistics
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from steplr_tui.runfolder import Status
from steplr_tui.study.space import Space, SpaceError
from steplr_tui.study.spec import SweepSpec
from steplr_tui.study.trials import set_trial_attrs, trial_of, trial_state

ATTR_SPEC = "steplr_tui"  # the study's definition, for workers on other boxes
TRIAL_ENV = "STEPLR_TUI_SWEEP_TRIAL"  # a script's trial process: which trial it is
PRUNER_STARTUP_TRIALS = 4
PRUNER_WARMUP_EPOCHS = 2  # the earliest a trial is pruned: after epoch 2
COUNTED = ("COMPLETE", "PRUNED", "FAIL")  # toward --trials (FAIL: a run that failed itself)


class StudyError(RuntimeError):
    """The study cannot be opened or used; the message says why and what to do."""


def _optuna():
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the sweep says what happens
    return optuna


def masked(url: str) -> str:
    """A storage URL fit to print: without its password."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


def open_storage(url: str, existing: bool = False) -> Any:
    """The storage a URL names; raises StudyError saying what to check. `existing`: a
    journal file must be there already (joining a study never starts a new one)."""
    optuna = _optuna()
    if url.startswith("journal:"):
        path = Path(url.removeprefix("journal:")).expanduser()
        if not path.parent.is_dir():
            raise StudyError(
                f"cannot open the study storage {url}: the folder {path.parent} does not "
                "exist (a typo? for several boxes it must be on a shared file system)"
            )
        if existing and not path.is_file():
            raise StudyError(
                f"cannot open the study storage {url}: there is no journal file {path} "
                "(the worker that made the study gave another --storage?)"
            )
    elif existing and url.startswith("sqlite:///"):
        file = Path(url.removeprefix("sqlite:///"))
        if not file.is_file():  # SQLite would make an empty one
            raise StudyError(
                f"cannot open the study storage {url}: there is no file {file} "
                "(the worker that made the study gave another --storage?)"
            )
    try:
        if url.startswith("journal:"):
            from optuna.storages.journal import JournalFileBackend, JournalStorage

            return JournalStorage(JournalFileBackend(str(path)))
        kwargs: dict[str, Any] = {}
        if url.startswith("sqlite"):
            # Trials report from their own processes: wait for a lock, never fail on one.
            kwargs = {"engine_kwargs": {"connect_args": {"timeout": 60}}}
        return optuna.storages.RDBStorage(url, **kwargs)
    except Exception as exc:  # SQLAlchemy's and the drivers' errors are many
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StudyError(
            f"cannot open the study storage {masked(url)} ({first[:160]}): check the URL, "
            "that its server is up and reachable, and that its driver is installed "
            "(psycopg2-binary for PostgreSQL, pymysql for MySQL)"
        ) from exc


def make_sampler(spec: SweepSpec, seed: int | None = None) -> Any:
    """The sweep's sampler, seeded with the sweep's seed (or `seed`: a worker that joins
    or resumes a study must not draw the first worker's random trials again)."""
    optuna = _optuna()
    kind = spec.sampler_used
    seed = spec.seed if seed is None else seed
    if kind == "grid":
        return _grid_sampler(optuna)(spec.space.grid, seed=seed)
    if kind == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def _grid_sampler(optuna: Any) -> Any:
    class Grid(optuna.samplers.GridSampler):
        """Optuna's grid, without its `study.stop()` once every point is taken: that works
        only inside `optimize`, and raised from `tell` before the trial's state was saved.
        The sweep runs the grid's size of trials itself."""

        def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
            return None

    return Grid


def make_pruner(spec: SweepSpec) -> Any:
    optuna = _optuna()
    if spec.pruner == "none":
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(
        n_startup_trials=PRUNER_STARTUP_TRIALS, n_warmup_steps=PRUNER_WARMUP_EPOCHS
    )


def create_study(spec: SweepSpec, url: str) -> Any:
    """A new study for `spec`; an existing one of that name must be this very sweep."""
    optuna = _optuna()
    storage = open_storage(url)
    try:
        study = optuna.create_study(
            storage=storage,
            study_name=spec.name,
            sampler=make_sampler(spec),
            pruner=make_pruner(spec),
            direction="maximize",
            load_if_exists=True,
        )
    except Exception as exc:
        raise StudyError(f"cannot create study {spec.name} in {masked(url)}: {exc}") from exc
    stored = study.user_attrs.get(ATTR_SPEC)
    if stored is None:
        study.set_user_attr(ATTR_SPEC, spec.as_dict())
    elif _same_sweep(stored, spec.as_dict()) is False:
        raise StudyError(
            f"a study named {spec.name} already exists in {masked(url)} with another search "
            f"space or parameters: --join {spec.name} works on it, or choose another --name"
        )
    return study


def _same_sweep(stored: Any, ours: dict[str, Any]) -> bool:
    keys = ("space", "fixed", "objective", "script")
    return isinstance(stored, dict) and all(stored.get(k) == ours.get(k) for k in keys)


def load_study(name: str, url: str) -> tuple[Any, SweepSpec]:
    """An existing study and its sweep definition (for --join, --resume and viewers)."""
    optuna = _optuna()
    storage = open_storage(url, existing=True)
    try:
        names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
    except Exception as exc:
        raise StudyError(f"cannot read the studies in {masked(url)}: {exc}") from exc
    if name not in names:
        known = ", ".join(names[:5]) or "none"
        raise StudyError(f"no study {name!r} in {masked(url)} (it holds: {known})")
    study = optuna.load_study(study_name=name, storage=storage)
    try:
        spec = SweepSpec.from_dict(study.user_attrs.get(ATTR_SPEC))
    except SpaceError as exc:
        raise StudyError(
            f"study {name} in {masked(url)} was not made by steplr-tui sweep ({exc})"
        ) from exc
    # Seeded anew for this worker: the same seed would draw the trials drawn already.
    salt = len(study.get_trials(deepcopy=False)) * 1_000_003 + os.getpid()
    study.sampler = make_sampler(spec, (spec.seed + salt) % 2**32)
    study.pruner = make_pruner(spec)
    return study, spec


def suggest(trial: Any, space: Space) -> dict[str, float | int]:
    """The trial's lr, step_size and gamma (the fixed ones as they are)."""
    params: dict[str, float | int] = {}
    for dim in space.dimensions:
        if dim.fixed:
            params[dim.name] = dim.values[0]
        elif dim.kind == "choice":
            params[dim.name] = trial.suggest_categorical(dim.name, list(dim.values))
        elif dim.is_int:
            params[dim.name] = trial.suggest_int(
                dim.name, int(dim.low), int(dim.high), log=dim.kind == "log"
            )
        else:
            params[dim.name] = trial.suggest_float(
                dim.name, float(dim.low), float(dim.high), log=dim.kind == "log"
            )
    return params


# ---- a trial's end ---------------------------------------------------------------------


def outcome(
    status: Status,
    metrics: list[dict[str, Any]],
    objective: str,
    reason: str,
    stopped_by_hand: bool = False,
) -> tuple[str, float | None, str]:
    """(Optuna's state, the value to tell, the reason) for a run that ended so."""
    last = _number(metrics[-1].get(objective)) if metrics else None
    if status is Status.COMPLETED:
        if last is None:
            return "FAIL", None, f"the run recorded no {objective} in its last epoch"
        return "COMPLETE", last, ""
    if status is Status.PRUNED:
        return "PRUNED", None, reason
    if status is Status.STOPPED and stopped_by_hand:
        return "PRUNED", None, reason or "stopped by hand"
    return "FAIL", None, reason


def tell(
    study: Any, number: int, status: Status, value: float | None, state: str, reason: str
) -> None:
    """Record a trial's end in the study (once: a finished trial is left as it is)."""
    optuna = _optuna()
    states = optuna.trial.TrialState
    if trial_state(study, number).is_finished():
        return  # told already (by the script's own process, or another worker)
    try:
        set_trial_attrs(study, number, status=status.value, reason=reason[:500])
        study.tell(
            number,
            values=value if state == "COMPLETE" else None,
            state=getattr(states, state),
            skip_if_finished=True,
        )
    except optuna.exceptions.UpdateFinishedTrialError:
        return  # told meanwhile, by the process that had the right to


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


# ---- the run side's end of a trial ----------------------------------------------------


@dataclass
class TrialLink:
    """What a trial's run does with its study: report each epoch's objective, ask the
    pruner, and say where it trains. `owner`: this process asked for the trial, so it
    tells the study how it ended (a sweep tells for the trials it launched)."""

    storage: str
    study_name: str
    number: int
    objective: str = "test_acc"
    owner: bool = False
    spec: SweepSpec | None = field(default=None, repr=False)
    _study: Any = field(default=None, repr=False)
    _trial: Any = field(default=None, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {"storage": self.storage, "study": self.study_name, "trial": self.number}

    @classmethod
    def from_dict(cls, data: Any, owner: bool = False) -> TrialLink:
        try:
            return cls(str(data["storage"]), str(data["study"]), int(data["trial"]), owner=owner)
        except (KeyError, TypeError, ValueError) as exc:
            raise StudyError(f"not a sweep trial ({data!r:.80})") from exc

    @classmethod
    def from_env(cls) -> TrialLink | None:
        text = os.environ.get(TRIAL_ENV)
        if not text:
            return None
        try:
            return cls.from_dict(json.loads(text))
        except ValueError as exc:
            raise StudyError(f"${TRIAL_ENV} is not a sweep trial: {text[:80]}") from exc

    def open(self) -> TrialLink:
        """Join the study; the trial must still be running (a finished one is not ours)."""
        optuna = _optuna()
        study, spec = load_study(self.study_name, self.storage)
        state = trial_state(study, self.number)
        if state != optuna.trial.TrialState.RUNNING:
            raise StudyError(f"trial {self.number} of {self.study_name} is already {state.name}")
        self._study, self._trial = study, trial_of(study, self.number)
        self.objective, self.spec = spec.objective, spec
        return self

    @property
    def params(self) -> dict[str, Any]:
        return dict(self._trial.params) if self._trial is not None else {}

    def where(self, folder: Path | None) -> None:
        """The run folder the trial trains in, and this host."""
        if self._trial is not None and folder is not None:
            self._trial.set_user_attr("run_folder", str(folder))
            self._trial.set_user_attr("host", socket.gethostname())

    def report(self, epoch: int, metrics: Mapping[str, float]) -> str | None:
        """Report the epoch's objective; the reason to stop, if the pruner says so."""
        value = _number(metrics.get(self.objective))
        if self._trial is None or value is None:
            return None
        self._trial.report(value, epoch)
        if not self._trial.should_prune():
            return None
        return prune_reason(self._study, self.number, epoch, value, self.objective)

    def finish(self, status: Status, metrics: list[dict[str, Any]], reason: str) -> str | None:
        """Tell the study how the run ended, if this process owns the trial; the state."""
        if not self.owner or self._study is None:
            return None
        state, value, why = outcome(status, metrics, self.objective, reason)
        tell(self._study, self.number, status, value, state, why)
        return state


def prune_reason(study: Any, number: int, epoch: int, value: float, objective: str) -> str:
    """Why the median pruner stopped a trial: its value against the others' median."""
    others = []
    for t in study.get_trials(deepcopy=False):
        if t.number != number and epoch in t.intermediate_values:
            v = _number(t.intermediate_values[epoch])
            if v is not None:
                others.append(v)
    what = f"{objective} {value:.2f} after epoch {epoch}"
    if not others:
        return f"pruned: {what}"
    median = statistics.median(others)
    return (
        f"pruned: {what} is below the median {median:.2f} of {len(others)} other "
        f"trial{'s' if len(others) != 1 else ''} at epoch {epoch}"
    )


# ---- the trials, as viewers and the shell read them -----------------------------------


@dataclass(frozen=True)
class TrialRow:
    """One trial of a study, in plain values."""

    number: int
    state: str  # Optuna's: RUNNING, COMPLETE, PRUNED, FAIL, WAITING
    params: dict[str, Any]
    curve: dict[int, float]  # the objective after each epoch, as reported
    value: float | None
    status: str  # the run's, where known (RUNNING while it runs)
    reason: str
    run_folder: str
    host: str
    started: float | None
    finished: float | None
    worker: int = 0  # the pid of the sweep worker that follows it (on `host`)

    @property
    def best(self) -> float | None:
        return max(self.curve.values()) if self.curve else self.value

    @property
    def last(self) -> float | None:
        if self.value is not None:
            return self.value
        return self.curve[max(self.curve)] if self.curve else None

    @property
    def epochs(self) -> int:
        return max(self.curve) if self.curve else 0

    @property
    def seconds(self) -> float | None:
        if self.started is None:
            return None
        end = self.finished if self.finished is not None else None
        return (end - self.started) if end is not None else None

    @property
    def counted(self) -> bool:
        """Counts toward the sweep's --trials: a result (COMPLETE, PRUNED, or a run that
        FAILED on its own); a trial interrupted, or stopped with its sweep, runs again."""
        if self.state == "FAIL":
            return self.status == Status.FAILED.value
        return self.state in COUNTED


def read_trials(study: Any) -> list[TrialRow]:
    rows = []
    for t in study.get_trials(deepcopy=False):
        attrs = t.user_attrs
        rows.append(
            TrialRow(
                number=t.number,
                state=t.state.name,
                params=dict(t.params),
                curve={int(k): float(v) for k, v in t.intermediate_values.items()},
                value=_number(t.value) if t.state.name == "COMPLETE" else None,
                status=str(attrs.get("status", "RUNNING" if t.state.name == "RUNNING" else "")),
                reason=str(attrs.get("reason", "")),
                run_folder=str(attrs.get("run_folder", "")),
                host=str(attrs.get("host", "")),
                worker=_int(attrs.get("worker")),
                started=t.datetime_start.timestamp() if t.datetime_start else None,
                finished=t.datetime_complete.timestamp() if t.datetime_complete else None,
            )
        )
    return rows
