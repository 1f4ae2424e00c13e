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
- **Heartbeat** (RDB storages: SQLite, PostgreSQL, MySQL): the worker that follows a
  trial, and the trial's own process, record its heartbeat every `heartbeat` seconds
  (Optuna's `record_heartbeat`). A RUNNING trial with no heartbeat for `grace`
  seconds is failed by any live worker (`optuna.storages.fail_stale_trials`), which
  records why (INTERRUPTED) and queues it again with its parameters (Optuna's retry
  callback), so a live worker, on any box, runs it again.
- **Passwords**: a storage URL is kept without its password (sweep.json, the study,
  each trial's config.json); the password comes from $STEPLR_TUI_DB_PASSWORD (where
  a password given in a URL is put for this process and its children), or for
  PostgreSQL from libpq's own PGPASSWORD or ~/.pgpass.
"""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import json
import math
import os
import re
import socket
import statistics
import threading
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from steplr_tui.runfolder import Status
from steplr_tui.runfolder.reader import process_alive
from steplr_tui.study.space import Space, SpaceError
from steplr_tui.study.spec import SweepSpec
from steplr_tui.study.trials import (
    frozen_of,
    running_with_heartbeat,
    set_trial_attrs,
    stale_trial_ids,
    storage_of,
    trial_of,
    trial_state,
    trial_user_attrs,
)
from steplr_tui.study.trials import trial_id as trial_id_of

ATTR_SPEC = "steplr_tui"  # the study's definition, for workers on other boxes
TRIAL_ENV = "STEPLR_TUI_SWEEP_TRIAL"  # a script's trial process: which trial it is
PRUNER_STARTUP_TRIALS = 4
PRUNER_WARMUP_EPOCHS = 2  # the earliest a trial is pruned: after epoch 2
COUNTED = ("COMPLETE", "PRUNED", "FAIL")  # toward --trials (FAIL: a run that failed itself)
PASSWORD_ENV = "STEPLR_TUI_DB_PASSWORD"  # the storage's password, never written anywhere
RETRIES = 3  # a trial whose worker stopped beating runs again at most this often


class StudyError(RuntimeError):
    """The study cannot be opened or used; the message says why and what to do."""


def _optuna():
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the sweep says what happens
    return optuna


def ask(study: Any) -> Any:
    """A new trial of the study (a trial queued again comes first). The heartbeat is
    recorded by the sweep itself, not by `optimize`: Optuna's warning about that is moot."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Heartbeat of storage")
        return study.ask()


def masked(url: str) -> str:
    """A storage URL fit to print: without its password."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


def _parsed(url: str) -> Any:
    """SQLAlchemy's URL object for a database URL; None for journal: or a URL it cannot read."""
    if url.startswith("journal:") or "://" not in url:
        return None
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url)
    except (ArgumentError, ValueError):
        return None


def without_password(url: str) -> str:
    """The storage URL to keep (sweep.json, the study, a trial's config.json): without its
    password. A password given in the URL goes to this process's environment
    ($STEPLR_TUI_DB_PASSWORD), where this worker, the workers it starts and its trials
    find it; nothing on disk holds it."""
    parsed = _parsed(url)
    if parsed is None or parsed.password is None:
        return url
    os.environ[PASSWORD_ENV] = str(parsed.password)
    return str(parsed._replace(password=None).render_as_string(hide_password=False))


def _connect_url(url: str) -> str:
    """The URL SQLAlchemy connects with: the password from the environment where the URL
    has none, and a plain postgresql:// on the driver `steplr-tui[postgres]` installs
    (SQLAlchemy's default driver differs from one version to the next)."""
    parsed = _parsed(url)
    if parsed is None:
        return url
    if parsed.drivername in ("postgresql", "postgres"):
        for module, driver in (("psycopg2", "psycopg2"), ("psycopg", "psycopg")):
            if importlib.util.find_spec(module) is not None:
                parsed = parsed.set(drivername=f"postgresql+{driver}")
                break
        else:
            raise StudyError(
                f"cannot open the study storage {masked(url)}: PostgreSQL needs its driver; "
                "pip install 'steplr-tui[postgres]' (psycopg2-binary)"
            )
    if parsed.password is None and os.environ.get(PASSWORD_ENV):
        parsed = parsed.set(password=os.environ[PASSWORD_ENV])
    return str(parsed.render_as_string(hide_password=False))


def open_storage(url: str, existing: bool = False, heartbeat: tuple[int, int] | None = None) -> Any:
    """The storage a URL names; raises StudyError saying what to check. `existing`: a
    journal file must be there already (joining a study never starts a new one).
    `heartbeat`: (interval, grace) in seconds, for an RDB storage."""
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
        if heartbeat is not None:
            kwargs.update(_heartbeat_kwargs(optuna, *heartbeat))
        return _rdb_storage(optuna, _connect_url(url), kwargs)
    except StudyError:
        raise
    except Exception as exc:  # SQLAlchemy's and the drivers' errors are many
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StudyError(
            f"cannot open the study storage {masked(url)} ({masked(first)[:160]}): check the "
            "URL, that its server is up and reachable, its password ($STEPLR_TUI_DB_PASSWORD, "
            "or PGPASSWORD / ~/.pgpass for PostgreSQL), and that its driver is installed "
            "(pip install 'steplr-tui[postgres]' for PostgreSQL, pymysql for MySQL)"
        ) from exc


def _rdb_storage(optuna: Any, url: str, kwargs: dict[str, Any]) -> Any:
    """Optuna's RDBStorage; two workers that make a new database's tables at the same
    moment (two boxes starting together) collide once: the later one tries again."""
    from sqlalchemy.exc import IntegrityError, ProgrammingError

    for attempt in range(3):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                warnings.simplefilter("ignore", FutureWarning)
                return optuna.storages.RDBStorage(url, **kwargs)
        except (IntegrityError, ProgrammingError):
            if attempt == 2:
                raise
            time.sleep(0.5 + attempt)
    raise AssertionError("unreachable")


# ---- the heartbeat: a dead worker's trial is taken over --------------------------------


def _heartbeat_kwargs(optuna: Any, interval: int, grace: int) -> dict[str, Any]:
    import inspect

    taken = TakenOver(grace)
    params = inspect.signature(optuna.storages.RDBStorage).parameters
    name = (
        "heartbeat_stale_trial_callback"  # Optuna 4.9 on
        if "heartbeat_stale_trial_callback" in params
        else "failed_trial_callback"
    )
    return {"heartbeat_interval": int(interval), "grace_period": int(grace), name: taken}


class TakenOver:
    """Optuna's callback for a trial failed for want of a heartbeat: Optuna's own retry
    callback queues it again with the same parameters (WAITING), for the next worker
    that asks; where it ran and how it ended stay with the failed trial."""

    def __init__(self, grace: int) -> None:
        self.grace = grace
        self.failed: list[int] = []  # the trials this process failed, by number

    def __call__(self, study: Any, trial: Any) -> None:
        optuna = _optuna()
        self.failed.append(trial.number)
        retry_cls = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if retry_cls is None:
                retry_cls = optuna.storages.RetryFailedTrialCallback
            clean = copy.deepcopy(trial)
            clean.user_attrs = {}
            retry_cls(max_retry=RETRIES)(study, clean)

    def reason(self, attrs: Mapping[str, Any]) -> str:
        """Why a trial that stopped beating is failed (a finished trial's attributes are
        final, so this is written just before Optuna fails it)."""
        who = f"pid {attrs.get('worker', '?')} on {attrs.get('host', '?')}"
        if attrs.get("status") == Status.STOPPED.value:
            return (
                f"stopped with its sweep worker ({who}) and not resumed within {self.grace} "
                "s while the sweep went on: the sweep runs it again with the same parameters"
            )
        return (
            f"no heartbeat for {self.grace} s from its sweep worker ({who}) or its run: "
            "killed (kill -9), a crash, or its box went down; the sweep runs it again "
            "with the same parameters"
        )


def _stale_callback(storage: Any) -> Any:
    for name in ("get_heartbeat_stale_trial_callback", "get_failed_trial_callback"):
        getter = getattr(storage, name, None)
        if getter is not None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return getter()
    return None


def heartbeat_on(storage: Any) -> bool:
    """Whether this storage (an RDB one opened with a heartbeat) fails stale trials."""
    getter = getattr(storage, "get_heartbeat_interval", None)
    return getter is not None and getter() is not None


def reclaim(study: Any) -> list[int]:
    """Fail the study's RUNNING trials whose heartbeat stopped, with Optuna's
    `fail_stale_trials` (its callback queues each again); the trials this call failed,
    by number. Each is marked INTERRUPTED with the cause first. Nothing for a storage
    without heartbeat."""
    optuna = _optuna()
    storage = storage_of(study)
    if not heartbeat_on(storage):
        return []
    callback = _stale_callback(storage)
    if not isinstance(callback, TakenOver):
        callback = TakenOver(0)
    stale = stale_trial_ids(study)
    if not stale:
        return []
    for trial_id in stale:
        with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):
            attrs = storage.get_trial(trial_id).user_attrs
            storage.set_trial_user_attr(trial_id, "reason", callback.reason(attrs))
            storage.set_trial_user_attr(trial_id, "status", Status.INTERRUPTED.value)
    before = len(callback.failed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    running = optuna.trial.TrialState.RUNNING
    for trial_id in stale:  # beat again meanwhile (a worker that was asleep): as it was
        with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):
            if storage.get_trial(trial_id).state == running:
                storage.set_trial_user_attr(trial_id, "status", Status.RUNNING.value)
    return callback.failed[before:]


def retried_from(study: Any, trial: Any) -> int | None:
    """The trial a trial queued again by the heartbeat runs again, by number (None for a
    new one)."""
    frozen = frozen_of(study, trial)
    number = frozen.system_attrs.get("failed_trial")
    return number if isinstance(number, int) else None


def beating(study: Any) -> set[int]:
    """The study's RUNNING trials that have a heartbeat (alive, or stale and to be taken
    over), by number; empty for a storage without heartbeat."""
    if not heartbeat_on(storage_of(study)):
        return set()
    return running_with_heartbeat(study)


class Heartbeat:
    """Records the heartbeat of some trials every `interval` seconds, in a thread of its
    own, until stopped (a process that dies stops beating: that is the point)."""

    def __init__(self, study: Any, interval: int) -> None:
        self.study = study
        self.storage = storage_of(study)
        self.interval = max(1, int(interval))
        self._ids: dict[int, int] = {}  # trial number -> trial id
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error = ""

    @property
    def enabled(self) -> bool:
        return hasattr(self.storage, "record_heartbeat")

    def add(self, number: int) -> None:
        """Beat for this trial too, from now (its first beat at once)."""
        if not self.enabled:
            return
        trial_id = trial_id_of(self.study, number)
        with self._lock:
            self._ids[number] = trial_id
        self._beat({number: trial_id})
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="sweep-heartbeat", daemon=True)
            self._thread.start()

    def discard(self, number: int) -> None:
        with self._lock:
            self._ids.pop(number, None)

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            self._ids.clear()

    def _beat(self, ids: dict[int, int]) -> None:
        for trial_id in ids.values():
            try:
                self.storage.record_heartbeat(trial_id)
                self.error = ""
            except Exception as exc:  # the server is away: beat again at the next interval
                self.error = f"{type(exc).__name__}: {str(exc)[:120]}"

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            with self._lock:
                ids = dict(self._ids)
            self._beat(ids)


def make_sampler(spec: SweepSpec, seed: int | None = None) -> Any:
    """The sweep's sampler, seeded with the sweep's seed (or `seed`: a worker that joins
    or resumes a study must not draw the first worker's random trials again)."""
    optuna = _optuna()
    kind = spec.sampler_used
    seed = spec.seed if seed is None else seed
    if kind == "grid":
        grid = dict(spec.space.grid)
        if len(spec.schedulers) > 1:
            grid["scheduler"] = list(spec.schedulers)
        return _grid_sampler(optuna)(grid, seed=seed)
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

        def sample_independent(self, study: Any, trial: Any, name: str, dist: Any) -> Any:
            """A script's own dimension (`trial.suggest_int("hidden", ...)`) is not in the
            grid: it is drawn at random, the grid's points stay the grid's."""
            if name not in self._search_space:
                random = optuna.samplers.RandomSampler()
                return random.sample_independent(study, trial, name, dist)
            return super().sample_independent(study, trial, name, dist)

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
    storage = open_storage(url, heartbeat=(spec.heartbeat, spec.grace))
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


def load_study(name: str, url: str, heartbeat: bool = False) -> tuple[Any, SweepSpec]:
    """An existing study and its sweep definition (for --join, --resume and viewers).
    `heartbeat`: a worker's, whose storage fails the trials that stopped beating."""
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
    if heartbeat and hasattr(storage, "record_heartbeat"):
        storage = open_storage(url, existing=True, heartbeat=(spec.heartbeat, spec.grace))
        study = optuna.load_study(study_name=name, storage=storage)
    # Seeded anew for this worker: the same seed would draw the trials drawn already.
    salt = len(study.get_trials(deepcopy=False)) * 1_000_003 + os.getpid()
    study.sampler = make_sampler(spec, (spec.seed + salt) % 2**32)
    study.pruner = make_pruner(spec)
    return study, spec


def suggest(trial: Any, space: Space, schedulers: tuple[str, ...] = ()) -> dict[str, Any]:
    """The trial's lr, step_size and gamma (the fixed ones as they are), and its scheduler
    when the sweep searches the built-in trainer's schedulers."""
    params: dict[str, Any] = {}
    if len(schedulers) > 1:
        params["scheduler"] = trial.suggest_categorical("scheduler", list(schedulers))
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
            params[dim.name] = dim.run_value(
                trial.suggest_float(
                    dim.name, float(dim.low), float(dim.high), log=dim.kind == "log"
                )
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
    _heartbeat: Any = field(default=None, repr=False)
    _last: dict[str, float] = field(default_factory=dict, repr=False)  # the last epoch's
    taken_over: bool = field(default=False, repr=False)  # the run stops, STOPPED, not PRUNED

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
        """Join the study; the trial must still be running (a finished one is not ours).
        The trial's heartbeat is this process's too from now, while it runs."""
        optuna = _optuna()
        study, spec = load_study(self.study_name, self.storage)
        state = trial_state(study, self.number)
        if state != optuna.trial.TrialState.RUNNING:
            raise StudyError(f"trial {self.number} of {self.study_name} is already {state.name}")
        self._study, self._trial = study, trial_of(study, self.number)
        self.objective, self.spec = spec.objective, spec
        self.beat()
        return self

    def beat(self) -> None:
        """Record the trial's heartbeat from this process until it ends (a process that
        dies stops beating, and a live worker then takes the trial over)."""
        if self._study is None or self.spec is None or self._heartbeat is not None:
            return
        self._heartbeat = Heartbeat(self._study, self.spec.heartbeat)
        with contextlib.suppress(Exception):  # a study that cannot be reached: no beat
            self._heartbeat.add(self.number)

    @property
    def params(self) -> dict[str, Any]:
        """The trial's parameters as its run uses them (at the table's precision)."""
        params = dict(self._trial.params) if self._trial is not None else {}
        return self.spec.space.run_values(params) if self.spec is not None else params

    def where(self, folder: Path | None) -> None:
        """The run folder the trial trains in, and this host."""
        if self._trial is not None and folder is not None:
            self._trial.set_user_attr("run_folder", str(folder))
            self._trial.set_user_attr("host", socket.gethostname())

    def report(self, epoch: int, metrics: Mapping[str, float]) -> str | None:
        """Report the epoch's objective; the reason to stop, if the pruner says so."""
        self._last = dict(metrics)
        value = _number(metrics.get(self.objective))
        if self._trial is None or value is None:
            return None
        try:
            self._trial.report(value, epoch)
        except _optuna().exceptions.UpdateFinishedTrialError:
            # Failed for want of a heartbeat (this box lost the study for longer than the
            # grace period) and queued again: another worker trains it; this run stops.
            self.taken_over = True
            self.close()
            grace = self.spec.grace if self.spec is not None else "the grace"
            return (
                f"trial {self.number} of {self.study_name} was taken over by another worker: "
                f"no heartbeat of it reached the study for {grace} s, so it runs again there"
            )
        if not self._trial.should_prune():
            return None
        return prune_reason(self._study, self.number, epoch, value, self.objective)

    def finish(self, status: Status, metrics: list[dict[str, Any]], reason: str) -> str | None:
        """Tell the study how the run ended, if this process owns the trial, or if the
        worker that follows it is gone (nobody else would, and with its heartbeat
        stopped the trial would be taken over and trained again); the state told."""
        self.close()
        if self._study is None or not (self.owner or self._orphan()):
            return None
        metrics = metrics or ([self._last] if self._last else [])
        state, value, why = outcome(status, metrics, self.objective, reason, not self.owner)
        tell(self._study, self.number, status, value, state, why)
        return state

    def close(self) -> None:
        """This process beats for the trial no more."""
        if self._heartbeat is not None:
            self._heartbeat.stop()

    def _orphan(self) -> bool:
        """The sweep worker that follows this trial, on this box, is gone."""
        try:
            attrs = trial_user_attrs(self._study, self.number)
        except Exception:
            return False
        worker, host = attrs.get("worker"), attrs.get("host")
        if not isinstance(worker, int) or (host and host != socket.gethostname()):
            return False
        return not process_alive(worker, socket.gethostname())


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
    """The study's trials, their parameters as their runs use them (Space.run_values)."""
    try:
        space: Space | None = SweepSpec.from_dict(study.user_attrs.get(ATTR_SPEC)).space
    except (SpaceError, TypeError, AttributeError, KeyError, ValueError):
        # Not made by steplr-tui sweep: the study's own values.
        space = None
    rows = []
    for t in study.get_trials(deepcopy=False):
        attrs = t.user_attrs
        rows.append(
            TrialRow(
                number=t.number,
                state=t.state.name,
                params=space.run_values(t.params) if space is not None else dict(t.params),
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
