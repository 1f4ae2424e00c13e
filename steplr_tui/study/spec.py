"""A sweep: what it searches, what it keeps fixed, how many trials, and where it lives.

A sweep is an Optuna study plus a folder, `<runs dir>/sweeps/<name>/`:

- `sweep.json`: the sweep (its search space, the fixed parameters, trials,
  sampler, pruner, objective, storage, and for a script's sweep the script);
- `study.db`: the Optuna study, in SQLite, unless `--storage` names another;
- `status.json`: this box's sweep process, RUNNING with its pid and host, then
  how it ended;
- `sweep.log`: a detached sweep's output, and `trials/N.log` a script trial's;
- `trials.csv` and `best.py`: written when the sweep ends (and by `--show`).

Every trial is an ordinary run folder in the runs directory, whose `config.json`
names its sweep and trial (`"sweep": {"name", "trial", ...}`). The definition is
stored in the study too (its user attribute `steplr_tui`), so a worker on another
box needs only the storage's URL to join. Plain Python.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from steplr_tui.runfolder.files import json_bytes, write_atomic
from steplr_tui.runfolder.params import SPECS, FieldError, TrainConfig
from steplr_tui.study.space import DIMENSIONS, Space, SpaceError, check_schedulers

SWEEPS_DIR = "sweeps"
SWEEP_FILE = "sweep.json"
STUDY_DB = "study.db"
SWEEP_LOG = "sweep.log"
TRIALS_CSV = "trials.csv"
BEST_FILE = "best.py"
SAMPLERS = ("auto", "tpe", "grid", "random")
PRUNERS = ("median", "none")
# The fields a trial takes from the sweep; device, threads and data belong to its box.
MACHINE_FIELDS = ("device", "threads", "data_dir", "download")
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,79}")
FORMAT = 1
HEARTBEAT_S = 30
GRACE_S = 120


@dataclass(frozen=True)
class SweepSpec:
    """What a sweep is: the same on every box that works on it."""

    name: str
    space: Space
    fixed: Mapping[str, Any]  # every other training parameter, as TrainConfig holds them
    trials: int
    sampler: str = "auto"  # auto: grid when every searched dimension is a list, else TPE
    pruner: str = "median"
    objective: str = "test_acc"  # maximised: the last epoch's value
    seed: int = 0
    script: tuple[str, ...] = ()  # a user's script and its arguments, else the built-in trainer
    storage: str = ""  # '' : the SQLite file in the sweep's folder (never with a password)
    created: float = field(default_factory=time.time)
    # Seconds between a trial's heartbeats, and without one before a live worker takes
    # the trial over (RDB storages): the same for every worker, so kept with the study.
    heartbeat: int = HEARTBEAT_S
    grace: int = GRACE_S
    # The built-in trainer's schedulers searched as a dimension (params["scheduler"]);
    # empty: StepLR, as every sweep before had.
    schedulers: tuple[str, ...] = ()
    share: bool = True  # train shared prefixes once, branch the trials (--no-share: off)

    @property
    def sampler_used(self) -> str:
        if self.sampler != "auto":
            return self.sampler
        return "grid" if self.space.grid is not None else "tpe"

    @property
    def trials_planned(self) -> int:
        """--trials, or the grid's size where a grid sampler has fewer points."""
        size = self.space.grid_size if self.sampler_used == "grid" else None
        if size is not None and len(self.schedulers) > 1:
            size *= len(self.schedulers)
        return min(self.trials, size) if size is not None else self.trials

    def trial_config(self, params: Mapping[str, Any], machine: TrainConfig) -> TrainConfig:
        """The training parameters of one trial: the fixed ones, the trial's, this box's."""
        values = {k: v for k, v in self.fixed.items() if k in SPECS and k not in MACHINE_FIELDS}
        values.update(self.space.fixed)
        values.update({k: params[k] for k in DIMENSIONS if k in params})
        if self.schedulers:
            values["scheduler"] = params.get("scheduler", self.schedulers[0])
        return replace(machine, **values).validated()

    def as_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "name": self.name,
            "space": self.space.as_dict(),
            "fixed": dict(self.fixed),
            "trials": self.trials,
            "sampler": self.sampler,
            "pruner": self.pruner,
            "objective": self.objective,
            "seed": self.seed,
            "script": list(self.script),
            "storage": _no_password(self.storage),
            "created": self.created,
            "heartbeat": self.heartbeat,
            "grace": self.grace,
            **({"schedulers": list(self.schedulers)} if self.schedulers else {}),
            "share": self.share,
        }

    @classmethod
    def from_dict(cls, data: Any) -> SweepSpec:
        """Raises SpaceError naming what is wrong."""
        if not isinstance(data, Mapping) or data.get("format") != FORMAT:
            raise SpaceError(f"not a steplr-tui sweep of format {FORMAT}")
        try:
            spec = cls(
                name=check_name(str(data["name"])),
                space=Space.from_dict(data["space"]),
                fixed=dict(data.get("fixed") or {}),
                trials=int(data["trials"]),
                sampler=str(data.get("sampler", "auto")),
                pruner=str(data.get("pruner", "median")),
                objective=str(data.get("objective", "test_acc")),
                seed=int(data.get("seed", 0)),
                script=tuple(str(a) for a in data.get("script") or ()),
                storage=str(data.get("storage", "")),
                created=float(data.get("created", 0.0)),
                heartbeat=int(data.get("heartbeat", HEARTBEAT_S)),
                grace=int(data.get("grace", GRACE_S)),
                schedulers=tuple(str(k) for k in data.get("schedulers") or ()),
                share=data.get("share", True) is not False,
            )
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, SpaceError):
                raise
            raise SpaceError(f"a sweep definition with a missing or bad value ({exc})") from exc
        return spec.checked()

    def checked(self) -> SweepSpec:
        if not 1 <= self.trials <= 100_000:
            raise SpaceError(
                f"--trials must be a whole number from 1 to 100000 (got {self.trials})"
            )
        if self.sampler not in SAMPLERS:
            raise SpaceError(
                f"--sampler must be one of {', '.join(SAMPLERS)} (got {self.sampler!r})"
            )
        if self.sampler == "grid" and self.space.grid is None:
            ranges = ", ".join(d.name for d in self.space.searched if d.grid() is None)
            raise SpaceError(
                f"--sampler grid needs a list for every searched parameter ({ranges} "
                "is a range): give lists, or use --sampler tpe"
            )
        if not 1 <= self.heartbeat <= 3600:
            raise SpaceError(
                f"--heartbeat must be a whole number of seconds from 1 to 3600 "
                f"(got {self.heartbeat})"
            )
        if not 2 * self.heartbeat <= self.grace <= 86400:
            raise SpaceError(
                f"--grace must be a whole number of seconds from twice --heartbeat "
                f"({2 * self.heartbeat}) to 86400 (got {self.grace}): a live trial may miss a beat"
            )
        check_schedulers(self.schedulers)
        if self.schedulers and self.script:
            raise SpaceError(
                "--scheduler searches the built-in trainer's schedulers: a --script builds "
                "its own (search it with trial.suggest_categorical in the script)"
            )
        if self.pruner not in PRUNERS:
            raise SpaceError(f"--pruner must be one of {', '.join(PRUNERS)} (got {self.pruner!r})")
        if not self.script:
            try:
                TrainConfig(**{k: v for k, v in self.fixed.items() if k in SPECS}).validated()
            except (FieldError, TypeError) as exc:
                raise SpaceError(f"the sweep's fixed parameters: {exc}") from exc
        return self


def _no_password(url: str) -> str:
    """Never a password on disk, whatever a caller passed (engine.without_password keeps
    it in the environment for the processes that connect)."""
    return re.sub(r"^([A-Za-z0-9+.-]+://[^:/@]*):[^@/]*@", r"\1@", url)


def check_name(name: str) -> str:
    if not NAME_RE.fullmatch(name):
        raise SpaceError(
            f"sweep name {name!r}: use 1 to 80 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def new_name() -> str:
    return time.strftime("sweep-%Y%m%d-%H%M%S")


def sweeps_dir(runs_dir: Path) -> Path:
    return runs_dir / SWEEPS_DIR


def sweep_folder(runs_dir: Path, name: str) -> Path:
    return sweeps_dir(runs_dir) / name


def storage_url(spec: SweepSpec, folder: Path) -> str:
    """The study's storage: the spec's, else the SQLite file in the sweep's folder."""
    return spec.storage or f"sqlite:///{(folder / STUDY_DB).resolve()}"


def write_spec(folder: Path, spec: SweepSpec) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    write_atomic(folder / SWEEP_FILE, json_bytes(spec.as_dict()))


def read_spec(folder: Path) -> SweepSpec:
    """The sweep in `folder`; raises SpaceError (a missing or broken sweep.json)."""
    try:
        data = json.loads((folder / SWEEP_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SpaceError(f"{folder} is not a steplr-tui sweep (no readable {SWEEP_FILE})") from exc
    return SweepSpec.from_dict(data)


def list_sweeps(runs_dir: Path) -> list[tuple[Path, SweepSpec | None]]:
    """Every sweep folder under the runs directory, newest first (a broken one: None)."""
    root = sweeps_dir(runs_dir)
    if not root.is_dir():
        return []
    found = []
    for child in root.iterdir():
        if (child / SWEEP_FILE).is_file():
            try:
                found.append((child, read_spec(child)))
            except SpaceError:
                found.append((child, None))
    found.sort(key=lambda item: item[1].created if item[1] else 0.0, reverse=True)
    return found
