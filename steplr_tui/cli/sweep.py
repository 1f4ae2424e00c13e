"""`steplr-tui sweep`: tune lr, step_size and gamma as a job of its own, on Optuna.

    steplr-tui sweep --lr 1e-4:1e-1:log --gamma 0.1:0.9 --step-size 1,2,3 --trials 16 \\
        --parallel 2 --epochs 6                      # a new sweep (--detach: in the background)
    steplr-tui sweep --join NAME --storage URL       # another worker on the same study
    steplr-tui sweep --resume NAME                   # continue a stopped sweep
    steplr-tui sweep --list | --show NAME | --stop NAME
    steplr-tui sweep --script train.py ... -- ARGS   # trials of your own script

Bad input (a space, a flag, a storage) is one line and exit status 2; a storage that
cannot be opened is exit status 1, with what to check.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from steplr_tui.cli.options import OneLineParser
from steplr_tui.runfolder import Status
from steplr_tui.runfolder.params import SPECS, FieldError, TrainConfig
from steplr_tui.runfolder.paths import resolve_runs_dir
from steplr_tui.runfolder.text import clean_text, plural
from steplr_tui.study.space import DIMENSIONS, SpaceError, parse_schedulers, parse_space
from steplr_tui.study.spec import (
    GRACE_S,
    HEARTBEAT_S,
    PRUNERS,
    SAMPLERS,
    SweepSpec,
    check_name,
    list_sweeps,
    new_name,
    read_spec,
    storage_url,
    sweep_folder,
    write_spec,
)
from steplr_tui.sweep.worker import Sweeper, WorkerPlan

PROG = "steplr-tui sweep"
FIXED = tuple(n for n in SPECS if n not in DIMENSIONS and n not in ("device", "threads"))


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=PROG,
        description="Tune StepLR's lr, step_size and gamma: trials on Optuna, side by side.",
        epilog="Each of --lr, --step-size and --gamma is a value (0.1: fixed), a list "
        "(0.1,0.3,0.5), a range (0.1:0.9) or a log range (1e-4:1e-1:log). Everything after "
        "-- goes to --script. NAME is a sweep's name, the start of one, or its folder; "
        "--show and --view without NAME take the newest.",
        allow_abbrev=False,
    )
    space = parser.add_argument_group("the search space (one value fixes a parameter)")
    for name in DIMENSIONS:
        space.add_argument(SPECS[name].flag, dest=name, metavar="SPACE", help=SPECS[name].help)
    space.add_argument(
        "--scheduler",
        metavar="KINDS",
        help="the built-in trainer's schedulers to compare, e.g. step,cosine,plateau (default: "
        "step); each uses lr, and step_size and gamma where it has them",
    )
    fixed = parser.add_argument_group("every trial's fixed parameters")
    for name in FIXED:
        spec = SPECS[name]
        fixed.add_argument(
            spec.flag, dest=name, metavar=name.upper(), help=f"{spec.help}: {spec.rule}"
        )
    machine = parser.add_argument_group("this box")
    for name in ("device", "threads"):
        spec = SPECS[name]
        machine.add_argument(
            spec.flag, dest=name, metavar=name.upper(), help=f"{spec.help}: {spec.rule}"
        )
    machine.add_argument("--data-dir", metavar="DIR", help="where MNIST is, or is downloaded to")
    machine.add_argument("--no-download", action="store_true", help="never try to download MNIST")
    machine.add_argument(
        "--runs-dir", metavar="DIR", help="where trials' run folders and sweeps go"
    )
    study = parser.add_argument_group("the sweep")
    study.add_argument("--trials", metavar="N", help="trials to run (default 16; a grid: its size)")
    study.add_argument("--parallel", metavar="K", help="trials at a time on this box (default 1)")
    study.add_argument("--name", metavar="NAME", help="the sweep's (and its study's) name")
    study.add_argument(
        "--storage",
        metavar="URL",
        help="an Optuna storage URL, or journal:PATH (its password is never written: "
        "see $STEPLR_TUI_DB_PASSWORD)",
    )
    study.add_argument(
        "--heartbeat",
        metavar="S",
        help=f"seconds between a trial's heartbeats in the study (default {HEARTBEAT_S})",
    )
    study.add_argument(
        "--grace",
        metavar="S",
        help="seconds without a heartbeat before a live worker takes a trial over "
        f"(default {GRACE_S})",
    )
    study.add_argument(
        "--sampler",
        metavar="{" + ",".join(SAMPLERS) + "}",
        help="auto: Optuna's grid when every searched parameter is a list, else TPE",
    )
    study.add_argument(
        "--pruner",
        metavar="{" + ",".join(PRUNERS) + "}",
        help="median: stop a trial whose accuracy falls below the others' median (default)",
    )
    study.add_argument("--script", metavar="PATH", help="trials run this script (see README)")
    study.add_argument(
        "--no-share",
        action="store_true",
        help="train every trial from scratch (by default, trials that agree until their first "
        "decay share that prefix: trained once, branched from its checkpoint)",
    )
    study.add_argument("--detach", action="store_true", help="work in the background")
    what = parser.add_argument_group("other sweeps")
    what.add_argument("--join", metavar="NAME", help="work on an existing study too")
    what.add_argument("--resume", metavar="NAME", help="continue a stopped sweep")
    what.add_argument("--list", action="store_true", help="the sweeps in the runs directory")
    what.add_argument(
        "--show", metavar="NAME", nargs="?", const="", help="a sweep's trials, its best, its files"
    )
    what.add_argument("--stop", metavar="NAME", help="stop this box's workers of a sweep")
    what.add_argument(
        "--view", metavar="NAME", nargs="?", const="", help="the dashboard on a sweep's view"
    )
    parser.add_argument("--worker", metavar="FOLDER", help=argparse.SUPPRESS)
    parser.add_argument("--worker-resume", action="store_true", help=argparse.SUPPRESS)
    return parser


def fail(message: str, code: int = 2) -> int:
    print(f"{PROG}: {message}", file=sys.stderr)
    return code


def _int(text: str | None, flag: str, default: int, lo: int, hi: int) -> int:
    if text is None:
        return default
    raw = text.strip()
    if not raw.isdigit() or not lo <= int(raw) <= hi:
        raise SpaceError(f"{flag} must be a whole number from {lo} to {hi} (got {text!r})")
    return int(raw)


def _machine(ns: argparse.Namespace) -> TrainConfig:
    values: dict[str, Any] = {}
    for name in ("device", "threads"):
        text = getattr(ns, name)
        if text is not None:
            try:
                values[name] = SPECS[name].parse(text, who=SPECS[name].flag)
            except FieldError as exc:
                raise SpaceError(str(exc)) from exc
    from steplr_tui.runfolder.paths import data_dir_problem

    problem = data_dir_problem(ns.data_dir)
    if problem:
        raise SpaceError(problem)
    return TrainConfig(**values, data_dir=ns.data_dir, download=not ns.no_download)


def main(argv: Sequence[str]) -> int:
    args = list(argv)
    script_args: list[str] = []
    if "--" in args:
        cut = args.index("--")
        args, script_args = args[:cut], args[cut + 1 :]
    parser = build_parser()
    ns = parser.parse_args(args)
    if ns.runs_dir is not None and not ns.runs_dir.strip():
        return fail("--runs-dir is empty: give a folder path")
    runs_dir = resolve_runs_dir(ns.runs_dir)
    try:
        machine = _machine(ns)
        parallel = _int(ns.parallel, "--parallel", 1, 1, 64)
    except SpaceError as exc:
        return fail(str(exc))
    modes = [f for f, v in (("--list", ns.list), ("--show", ns.show is not None),
             ("--view", ns.view is not None), ("--stop", ns.stop), ("--join", ns.join),
             ("--resume", ns.resume)) if v]  # fmt: skip
    if len(modes) > 1:
        return fail(f"give one of {', '.join(modes)} at a time")
    given = [SPECS[n].flag for n in (*DIMENSIONS, *FIXED) if getattr(ns, n) is not None]
    given += [f for f, v in (("--trials", ns.trials), ("--name", ns.name),
              ("--sampler", ns.sampler), ("--pruner", ns.pruner), ("--script", ns.script),
              ("--heartbeat", ns.heartbeat), ("--grace", ns.grace),
              ("--no-share", ns.no_share or None)) if v is not None]  # fmt: skip
    if modes and modes[0] not in ("--list",) and given:
        return fail(
            f"{modes[0]} works on a sweep as it was made: drop {', '.join(given)} "
            "(a new sweep takes them)"
        )
    if ns.list:
        return list_main(runs_dir)
    if ns.show is not None:
        return show_main(runs_dir, ns.show)
    if ns.stop:
        return stop_main(runs_dir, ns.stop)
    if ns.view is not None:
        return view_main(runs_dir, ns.view)
    if ns.worker:
        return work(Path(ns.worker), runs_dir, machine, parallel, resume=ns.worker_resume)
    if ns.resume:
        return resume_main(runs_dir, ns.resume, machine, parallel, ns.detach)
    if ns.join:
        return join_main(runs_dir, ns, machine, parallel)
    try:
        spec = new_spec(ns, script_args)
    except SpaceError as exc:
        return fail(str(exc))
    return start(spec, runs_dir, machine, parallel, ns.detach)


def new_spec(ns: argparse.Namespace, script_args: list[str]) -> SweepSpec:
    """The sweep the flags describe; raises SpaceError naming the flag and the fix."""
    defaults = TrainConfig()
    fixed: dict[str, Any] = {}
    for name in FIXED:
        text = getattr(ns, name)
        value = getattr(defaults, name)
        if text is not None:
            try:
                value = SPECS[name].parse(text, who=SPECS[name].flag)
            except FieldError as exc:
                raise SpaceError(str(exc)) from exc
        fixed[name] = value
    kinds = _kinds(ns.scheduler)
    space = parse_space(
        {n: getattr(ns, n) for n in DIMENSIONS}, defaults.as_dict(), others=len(kinds) > 1
    )
    script: tuple[str, ...] = ()
    if ns.script is not None:
        path = Path(ns.script).expanduser()
        if path.is_dir():
            raise SpaceError(f"--script {ns.script} is a folder: give the path of your script")
        if not path.is_file():
            raise SpaceError(f"--script {ns.script}: no such file; give the path of your script")
        script = (str(path.resolve()), *script_args)
    elif script_args:
        raise SpaceError("arguments after -- go to --script: give --script PATH too")
    spec = SweepSpec(
        name=check_name(ns.name) if ns.name else new_name(),
        space=space,
        fixed=fixed,
        trials=_int(ns.trials, "--trials", 16, 1, 100_000),
        sampler=(ns.sampler or "auto").lower(),
        pruner=(ns.pruner or "median").lower(),
        script=script,
        storage=_storage(ns.storage),
        heartbeat=_int(ns.heartbeat, "--heartbeat", HEARTBEAT_S, 1, 3600),
        grace=_int(ns.grace, "--grace", GRACE_S, 1, 86400),
        schedulers=kinds,
        share=not ns.no_share,
    )
    return spec.checked()


def _storage(text: str | None) -> str:
    """--storage as it is kept: without its password (which this process's environment
    keeps, for the workers and trials it starts)."""
    from steplr_tui.study.engine import without_password

    return without_password((text or "").strip())


def _kinds(text: str | None) -> tuple[str, ...]:
    return () if text is None else parse_schedulers(text)


def start(
    spec: SweepSpec,
    runs_dir: Path,
    machine: TrainConfig,
    parallel: int,
    detach: bool,
) -> int:
    from steplr_tui.study.engine import StudyError, create_study, masked

    folder = sweep_folder(runs_dir, spec.name)
    if folder.exists():
        return fail(
            f"sweep {spec.name} exists in {folder.parent}: --resume {spec.name} continues it, "
            "or choose another --name"
        )
    try:
        folder.mkdir(parents=True)
    except OSError as exc:
        return fail(f"cannot create {folder} ({exc.strerror or exc}): choose another --runs-dir", 1)
    url = storage_url(spec, folder)
    try:
        study = create_study(spec, url)
        write_spec(folder, spec)
    except (StudyError, OSError) as exc:
        with contextlib.suppress(OSError):
            for leftover in folder.iterdir():
                leftover.unlink()
            folder.rmdir()
        return fail(str(exc), 1)
    from steplr_tui.study.space import step_notes

    for note in step_notes(spec.space["step_size"], spec.fixed.get("epochs")):
        print(f"{PROG}: {note}", file=sys.stderr)
    planned = spec.trials_planned
    grid = f" (the grid's {planned} points)" if planned < spec.trials else ""
    print(
        f"{PROG}: {spec.name}: {plural(planned, 'trial')}{grid}, {parallel} at a time, "
        f"{spec.sampler_used} sampler, {spec.pruner} pruner, over {spec.space.describe()}\n"
        f"  folder:  {folder}\n  study:   {spec.name} in {masked(url)}",
        file=sys.stderr,
    )
    if detach:
        return detach_main(spec, folder, runs_dir, parallel, machine)
    return run_worker(
        WorkerPlan(spec, folder, url, runs_dir, machine, parallel, resume=False), study
    )


def _machine_args(machine: TrainConfig, runs_dir: Path, parallel: int) -> list[str]:
    out = ["--runs-dir", str(runs_dir), "--parallel", str(parallel)]
    out += ["--device", machine.device, "--threads", str(machine.threads)]
    if machine.data_dir:
        out += ["--data-dir", machine.data_dir]
    if not machine.download:
        out.append("--no-download")
    return out


def detach_main(
    spec: SweepSpec,
    folder: Path,
    runs_dir: Path,
    parallel: int,
    machine: TrainConfig,
    *,
    resume: bool = False,
) -> int:
    from steplr_tui.sweep.worker import detach_worker

    what = ["--worker", str(folder), *(["--worker-resume"] if resume else [])]
    pid = detach_worker([*what, *_machine_args(machine, runs_dir, parallel)], folder)
    print(
        f"{PROG}: {spec.name} works in the background (pid {pid})\n"
        f"  watch:   steplr-tui sweep --view {spec.name} (or ctrl+g in the dashboard)\n"
        f"  stop:    steplr-tui sweep --stop {spec.name}\n"
        f"  output:  {folder / 'sweep.log'}"
    )
    return 0


def run_worker(plan: WorkerPlan, study: Any) -> int:
    return Sweeper(plan, study, sys.stdout).run()


def _find(runs_dir: Path, name: str) -> tuple[Path, SweepSpec]:
    """A sweep by its folder, its name, the start of its name, or ('') the newest."""
    sweeps = [p for p, _ in list_sweeps(runs_dir)]
    as_path = Path(name).expanduser()
    if name and (as_path / "sweep.json").is_file():
        return as_path, read_spec(as_path)
    if not name and sweeps:
        return sweeps[0], read_spec(sweeps[0])
    exact = sweep_folder(runs_dir, name) if name else None
    if exact is not None and (exact / "sweep.json").is_file():
        return exact, read_spec(exact)
    matches = [p for p in sweeps if name and p.name.startswith(name)]
    if len(matches) == 1:
        return matches[0], read_spec(matches[0])
    shown = ", ".join(p.name for p in (matches or sweeps)[:5]) or "none"
    what = f"{len(matches)} sweeps start with {name!r}" if matches else f"no sweep {name!r}"
    raise SpaceError(
        f"{what} in {runs_dir / 'sweeps'} (sweeps there: {shown}; "
        "steplr-tui sweep --list shows them)"
    )


def _complete(spec: SweepSpec, folder: Path) -> str:
    """Why a worker has nothing to do on this sweep ('' when it has)."""
    from steplr_tui.study.engine import read_trials

    try:
        _url, study = _open(spec, folder)
    except Exception:
        return ""  # the worker says what is wrong with the study
    rows = read_trials(study)
    done = sum(1 for r in rows if r.counted)
    waiting = any(r.state == "RUNNING" for r in rows)
    if done >= spec.trials_planned and not waiting:
        return (
            f"sweep {spec.name} is complete ({done} of {plural(spec.trials_planned, 'trial')}): "
            f"steplr-tui sweep --show {spec.name} shows them"
        )
    return ""


def _open(spec: SweepSpec, folder: Path) -> tuple[str, Any]:
    from steplr_tui.study.engine import load_study

    url = storage_url(spec, folder)
    study, _ = load_study(spec.name, url)
    return url, study


def work(folder: Path, runs_dir: Path, machine: TrainConfig, parallel: int, resume: bool) -> int:
    """A detached worker (`--worker FOLDER`, or `--resume` in the background)."""
    from steplr_tui.study.engine import StudyError

    try:
        spec = read_spec(folder)
        url, study = _open(spec, folder)
    except (SpaceError, StudyError) as exc:
        return fail(str(exc), 1)
    return run_worker(
        WorkerPlan(spec, folder, url, runs_dir, machine, parallel, resume=resume), study
    )


def resume_main(
    runs_dir: Path, name: str, machine: TrainConfig, parallel: int, detach: bool
) -> int:
    from steplr_tui.study.engine import StudyError
    from steplr_tui.study.table import sweep_state

    try:
        folder, spec = _find(runs_dir, name)
    except SpaceError as exc:
        return fail(str(exc))
    done = _complete(spec, folder)
    if done:
        print(f"{PROG}: {done}")
        return 0
    state = sweep_state(folder)
    if state.status is Status.RUNNING and not detach:
        pids = ", ".join(map(str, state.live_pids))
        return fail(
            f"sweep {spec.name} is still running here (pid {pids}): --join {spec.name} adds "
            f"a worker, steplr-tui sweep --stop {spec.name} stops it",
            1,
        )
    if detach:
        return detach_main(spec, folder, runs_dir, parallel, machine, resume=True)
    try:
        url, study = _open(spec, folder)
    except StudyError as exc:
        return fail(str(exc), 1)
    print(f"{PROG}: resuming {spec.name} ({folder})", file=sys.stderr)
    return run_worker(
        WorkerPlan(spec, folder, url, runs_dir, machine, parallel, resume=True), study
    )


def join_main(runs_dir: Path, ns: argparse.Namespace, machine: TrainConfig, parallel: int) -> int:
    """Another worker of an existing study: here, or on another box with its storage URL."""
    from steplr_tui.study.engine import StudyError, load_study, masked

    name = ns.join
    folder = sweep_folder(runs_dir, name)
    try:
        if ns.storage:
            url = _storage(ns.storage)
            study, spec = load_study(name, url)
            if not (folder / "sweep.json").is_file():
                spec = dataclasses.replace(spec, storage=url)
                write_spec(folder, spec)
        else:
            folder, spec = _find(runs_dir, name)
            url, study = _open(spec, folder)
    except SpaceError as exc:
        return fail(str(exc))
    except (StudyError, OSError) as exc:
        return fail(str(exc), 1)
    done = _complete(spec, folder)
    if done:
        print(f"{PROG}: {done}")
        return 0
    print(f"{PROG}: joining {spec.name} in {masked(url)} ({parallel} at a time)", file=sys.stderr)
    if ns.detach:
        return detach_main(spec, folder, runs_dir, parallel, machine)
    return run_worker(
        WorkerPlan(spec, folder, url, runs_dir, machine, parallel, resume=False), study
    )


def _print_table(table: list) -> None:
    """Rows of cells in aligned columns; nothing a sweep's files hold (a folder's name, a
    trial's reason, a script's values) can drive the terminal."""
    rows = [[clean_text(c) for c in r] for r in table]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


def list_main(runs_dir: Path) -> int:
    """The sweeps here, newest first: their state, trials done, best, and space."""
    import datetime

    from steplr_tui.study.engine import read_trials
    from steplr_tui.study.table import sweep_state

    sweeps = list_sweeps(runs_dir)
    if not sweeps:
        print(f"no sweeps in {runs_dir / 'sweeps'} (steplr-tui sweep --help starts one)")
        return 0
    table = [("sweep", "created", "status", "trials", "best", "searching")]
    for folder, spec in sweeps:
        if spec is None:
            table.append((folder.name, "", "unreadable sweep.json", "", "", ""))
            continue
        done, best = "?", "-"
        with contextlib.suppress(Exception):  # a storage that is not reachable now
            rows = read_trials(_open(spec, folder)[1])
            done = str(sum(1 for r in rows if r.counted))
            values = [r.value for r in rows if r.value is not None]
            best = f"{max(values):.2f}%" if values else "-"
        created = datetime.datetime.fromtimestamp(spec.created).strftime("%Y-%m-%d %H:%M")
        table.append(
            (spec.name, created, sweep_state(folder).status.value,
             f"{done}/{spec.trials_planned}", best, spec.space.describe())
        )  # fmt: skip
    _print_table(table)
    return 0


def show_main(runs_dir: Path, name: str) -> int:
    from steplr_tui.study.engine import StudyError, read_trials
    from steplr_tui.study.report import best_snippet, best_trial, by_scheduler, write_reports
    from steplr_tui.study.table import (
        COLUMNS,
        best_number,
        local_status,
        sort_rows,
        sweep_state,
        trial_cells,
    )

    try:
        folder, spec = _find(runs_dir, name)
        _url, study = _open(spec, folder)
    except SpaceError as exc:
        return fail(str(exc))
    except StudyError as exc:
        return fail(str(exc), 1)
    rows = read_trials(study)
    best = best_number(rows)
    table = [COLUMNS] + [
        trial_cells(spec, r, best, local_status(r), time.time()) for r in sort_rows(rows, "trial")
    ]
    _print_table(table)
    state = sweep_state(folder)
    done = sum(1 for r in rows if r.counted)
    print(
        f"({spec.name}: {state.status.value}, {done} of "
        f"{plural(spec.trials_planned, 'trial')} done)"
    )
    for line in by_scheduler(spec, rows):  # which scheduler wins here, and by how much
        print(f"  {clean_text(line)}")
    write_reports(folder, spec, rows)
    row = best_trial(rows)
    if row is not None:
        print(best_snippet(spec, row), end="")
    return 0


def view_main(runs_dir: Path, name: str) -> int:
    """The dashboard, with the sweep's view open (escape goes back to the dashboard)."""
    try:
        folder, _spec = _find(runs_dir, name)
    except SpaceError as exc:
        return fail(str(exc))
    from steplr_tui.viewer.heap import hold_collections

    hold_collections()  # until the dashboard's first frame is out
    from steplr_tui.cli.run_side import starter
    from steplr_tui.viewer.app import SteplrApp

    app = SteplrApp(TrainConfig(), runs_dir=runs_dir, sweep=folder, starter=starter())
    app.run()
    return app.return_code or 0


def stop_main(runs_dir: Path, name: str) -> int:
    from steplr_tui.study.table import sweep_state

    try:
        folder, spec = _find(runs_dir, name)
    except SpaceError as exc:
        return fail(str(exc))
    pids = sweep_state(folder).live_pids
    if not pids:
        return fail(f"sweep {spec.name} has no worker running on this box", 1)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    print(f"{PROG}: asked {spec.name}'s worker(s) (pid {', '.join(map(str, pids))}) to stop…")
    deadline = time.monotonic() + 45.0
    while time.monotonic() < deadline and sweep_state(folder).status is Status.RUNNING:
        time.sleep(0.2)
    state = sweep_state(folder)
    print(clean_text(f"{PROG}: {spec.name} {state.status.value}: {state.reason}"))
    return 0 if state.status is not Status.RUNNING else 1
