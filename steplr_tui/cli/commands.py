"""The commands: `--detach`, `attach`, `stop`, `edit`, `export`, and `_run` (the process of
a detached run), each parsing its own arguments and answering in one line on error."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from steplr_tui.cli.options import Options, command_parser, find_run_or_exit, need_run
from steplr_tui.runfolder.params import SPECS, FieldError, TrainConfig
from steplr_tui.runfolder.text import clean_text, plural


def headless_job(job, config: TrainConfig) -> int:
    from steplr_tui.run.headless import run_headless
    from steplr_tui.run.torchrun import launched_by_torchrun

    if not launched_by_torchrun():
        return run_headless(job)
    from steplr_tui.run.distributed import init_from_env, shutdown

    dist, device = init_from_env(config.device)
    try:
        code = run_headless(job, dist=dist, device=device)
    except BaseException:
        shutdown()
        raise
    shutdown(together=True)
    return code


def say_after(app) -> None:
    """What goes on after the dashboard closed (a run it watched in another process)."""
    message = getattr(app, "farewell", "")
    if message:
        print(message)


def detach_main(config: TrainConfig, options: Options) -> int:
    """`--detach`: start the run in the background, say where it is, return at once."""
    from steplr_tui.run.launch import launch
    from steplr_tui.run.record import RecordError

    try:
        keep = {"keep_checkpoints": options.keep.as_json()} if options.keep else None
        launched = launch(
            config, options.runs_dir, resume=options.resume, nproc=options.nproc, meta=keep
        )
    except (RecordError, OSError) as exc:
        print(f"steplr-tui: --detach: {exc}", file=sys.stderr)
        return 1
    verb = "resumed" if options.resume else "started"
    ranks = f" with {options.nproc} DDP processes" if options.nproc > 1 else ""
    print(
        f"steplr-tui: {verb} {launched.name} in the background{ranks} (pid {launched.pid})\n"
        f"  folder: {launched.path}\n"
        f"  watch:  steplr-tui attach {launched.name}\n"
        f"  stop:   steplr-tui stop {launched.name}"
    )
    return 0


def attach_main(argv: Sequence[str]) -> int:
    """`steplr-tui attach [RUN]`: the dashboard on a run in another process (or a finished one)."""
    parser = command_parser(
        "steplr-tui attach", "Open the dashboard on a run: replay it, then follow it live."
    )
    parser.add_argument(
        "run",
        metavar="RUN",
        nargs="?",
        help="a run folder or name (default: the newest running run)",
    )
    parser.add_argument("--runs-dir", metavar="DIR", help="where run records are")
    ns = parser.parse_args(argv)
    from steplr_tui.runfolder.reader import newest_running, resolve_runs_dir

    if ns.run is None:
        runs_dir = resolve_runs_dir(ns.runs_dir)
        newest = newest_running(runs_dir)
        if newest is None:
            print(
                f"steplr-tui attach: no run is running in {runs_dir}; give a RUN to open a "
                "finished one (steplr-tui --list-runs shows them)",
                file=sys.stderr,
            )
            return 1
        path = newest.path
        from steplr_tui.runfolder.text import clean_text

        print(
            f"steplr-tui: attaching to {clean_text(path.name)}, the newest running run",
            file=sys.stderr,
        )
    else:
        path = find_run_or_exit(parser, ns.run, ns.runs_dir)
    from steplr_tui.viewer.heap import hold_collections

    hold_collections()  # until the dashboard's first frame is out
    from steplr_tui.cli.run_side import starter
    from steplr_tui.viewer.app import SteplrApp

    app = SteplrApp(
        TrainConfig(), attach=path, runs_dir=resolve_runs_dir(ns.runs_dir), starter=starter()
    )
    app.run()
    say_after(app)
    return app.return_code or 0


def stop_main(argv: Sequence[str]) -> int:
    parser = command_parser(
        "steplr-tui stop",
        "Stop a run at its next batch (STOPPED, checkpoint kept) and wait for it to end. "
        "A run that took the stop but is still finishing its epoch (a script's evaluation) "
        "is no failure: the command says so and exits 0.",
    )
    parser.add_argument(
        "run", metavar="RUN", nargs="?", help="a run folder or name (as for --resume)"
    )
    parser.add_argument(
        "--wait",
        metavar="S",
        help="seconds to wait for the run to end (default 10; 0: ask and return)",
    )
    parser.add_argument("--runs-dir", metavar="DIR", help="where run records are")
    ns = parser.parse_args(argv)
    need_run(parser, ns.run)
    from steplr_tui.cli.shell import STOP_WAIT_S, CommandError, stop_run

    wait = STOP_WAIT_S
    if ns.wait is not None:
        try:
            wait = float(ns.wait)
        except ValueError:
            wait = -1.0
        if not 0 <= wait <= 86400:  # also refuses nan
            parser.exit(
                2,
                f"steplr-tui stop: --wait must be a number of seconds from 0 to 86400 "
                f"(got {ns.wait!r})\n",
            )
    path = find_run_or_exit(parser, ns.run, ns.runs_dir)
    try:
        return stop_run(path, sys.stdout, wait)
    except CommandError as exc:
        print(f"steplr-tui stop: {clean_text(exc)}", file=sys.stderr)
        return 1


def edit_main(argv: Sequence[str]) -> int:
    parser = command_parser(
        "steplr-tui edit",
        "Queue a live edit of a running run's schedule; it applies at the next epoch boundary.",
    )
    parser.add_argument(
        "run", metavar="RUN", nargs="?", help="a run folder or name (as for --resume)"
    )
    for name in ("lr", "step_size", "gamma"):
        spec = SPECS[name]
        parser.add_argument(
            spec.flag, dest=name, metavar=name.upper(), help=f"{spec.help}: {spec.rule}"
        )
    parser.add_argument(
        "--milestones",
        metavar="E1,E2",
        help="a MultiStepLR's milestones: increasing epochs, like 4,6",
    )
    parser.add_argument(
        "--warmup",
        metavar="EPOCHS",
        help="a SequentialLR's warmup length (LinearLR or ConstantLR), while it has not ended",
    )
    parser.add_argument("--runs-dir", metavar="DIR", help="where run records are")
    ns = parser.parse_args(argv)
    need_run(parser, ns.run)
    from steplr_tui.runfolder.schedule import ScheduleEdit

    values = {}
    for name in ("lr", "step_size", "gamma"):
        text = getattr(ns, name)
        if text is None:
            continue
        try:
            values[name] = SPECS[name].parse(text, who=SPECS[name].flag)
        except FieldError as exc:
            parser.exit(2, f"steplr-tui edit: {exc}\n")
    from steplr_tui.runfolder.schedule import parse_milestones

    if ns.milestones is not None:
        try:
            values["milestones"] = parse_milestones(ns.milestones, "--milestones")
        except ValueError as exc:
            parser.exit(2, f"steplr-tui edit: {exc}\n")
    if ns.warmup is not None:
        text = ns.warmup.strip()
        if not text.isascii() or not text.isdigit() or int(text) < 1:
            parser.exit(
                2,
                f"steplr-tui edit: --warmup must be a whole number of epochs from 1 "
                f"(got {ns.warmup!r:.30})\n",
            )
        values["warmup"] = int(text)
    if not values:
        parser.exit(
            2,
            "steplr-tui edit: give at least one of --lr, --step-size, --gamma, --milestones, "
            "--warmup\n",
        )
    path = find_run_or_exit(parser, ns.run, ns.runs_dir)
    from steplr_tui.cli.shell import CommandError, edit_run

    try:
        return edit_run(path, ScheduleEdit(**values), sys.stdout)
    except CommandError as exc:
        print(f"steplr-tui edit: {clean_text(exc)}", file=sys.stderr)
        return 1


def export_main(argv: Sequence[str]) -> int:
    """`steplr-tui export RUN [--csv] [--tensorboard DIR]`: the snippet on stdout, the CSV
    beside the record, TensorBoard event files in DIR."""
    parser = command_parser(
        "steplr-tui export", "Print a PyTorch snippet that reproduces a recorded run's schedule."
    )
    parser.add_argument(
        "run", metavar="RUN", nargs="?", help="a run folder, or a run name (as for --resume)"
    )
    parser.add_argument(
        "--csv", action="store_true", help="also write metrics.csv beside the run's metrics.jsonl"
    )
    parser.add_argument(
        "--tensorboard",
        metavar="DIR",
        help="also write the run's scalars as TensorBoard event files in DIR/<run name>/",
    )
    parser.add_argument("--runs-dir", metavar="DIR", help="where run records are")
    ns = parser.parse_args(argv)
    need_run(parser, ns.run)
    if ns.tensorboard is not None and not ns.tensorboard.strip():
        parser.exit(2, "steplr-tui export: --tensorboard is empty: give a folder path\n")
    from steplr_tui.runfolder.export import ExportError, run_snippet, write_csv
    from steplr_tui.runfolder.reader import RunNotFound, read_run
    from steplr_tui.runfolder.text import clean_text

    try:
        info = read_run(find_run_or_exit(parser, ns.run, ns.runs_dir))
    except RunNotFound as exc:
        print(f"steplr-tui export: {clean_text(exc)}", file=sys.stderr)
        return 2
    except SystemExit as exc:
        return int(exc.code or 0)
    # The snippet first: a record it cannot be made from writes nothing at all.
    try:
        if info.config_damaged:
            raise ExportError("; ".join(info.damage))
        snippet = run_snippet(info)
    except ExportError as exc:
        print(
            clean_text(
                f"steplr-tui export: run {info.name} cannot be exported: {exc}; "
                f"fix its {info.path / 'config.json'}"
            ),
            file=sys.stderr,
        )
        return 1
    if ns.csv:
        try:
            path = write_csv(info)
        except OSError as exc:
            print(
                f"steplr-tui export: cannot write {info.path / 'metrics.csv'} ({exc}); "
                "check the folder's permissions and free space",
                file=sys.stderr,
            )
            return 1
        print(f"steplr-tui: wrote {path} ({plural(len(info.metrics), 'epoch')})", file=sys.stderr)
    if ns.tensorboard is not None:
        from steplr_tui.cli.tensorboard import ExportError, export_tensorboard

        try:
            done = export_tensorboard(info, Path(ns.tensorboard))
        except ExportError as exc:
            print(f"steplr-tui export: {exc}", file=sys.stderr)
            return 1
        print(
            f"steplr-tui: wrote {done.scalars:,} scalars ({plural(done.epochs, 'epoch')}, "
            f"{done.batches:,} batches, {done.edits} edits) to {done.folder}; "
            f"view them with: tensorboard --logdir {ns.tensorboard}",
            file=sys.stderr,
        )
    print(snippet, end="")
    return 0


def run_main(argv: Sequence[str]) -> int:
    """`_run FOLDER`: the process of a detached run (see run/launch.py); not for people."""
    parser = command_parser("steplr-tui _run", "The process of a detached run.")
    parser.add_argument("folder")
    parser.add_argument("--control-offset", type=int, default=0)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--data-dir")
    parser.add_argument("--no-download", action="store_true")
    ns = parser.parse_args(argv)
    from steplr_tui.run.jobs import Job
    from steplr_tui.runfolder.reader import RunNotFound, read_run
    from steplr_tui.runfolder.resume import config_from_record

    folder = Path(ns.folder)
    try:
        info = read_run(folder)
        base = TrainConfig(
            device=ns.device, threads=ns.threads, data_dir=ns.data_dir, download=not ns.no_download
        )
        if ns.resume:
            config = config_from_record(info, base)
        else:
            known = {k: v for k, v in info.config.items() if k in TrainConfig.__dataclass_fields__}
            config = TrainConfig(**known).validated()
    except (RunNotFound, FieldError, TypeError) as exc:
        print(f"steplr-tui: cannot run {folder}: {exc}", file=sys.stderr)
        return 2
    job = Job(
        config,
        resume=folder if ns.resume else None,
        folder=None if ns.resume else folder,
        control_offset=ns.control_offset,
    )
    return headless_job(job, config)
