"""Command line: flags for every parameter, the dashboard, headless and detached runs,
and the commands that work on a run folder (attach, stop, edit, export).

Parsing imports neither torch nor Textual, so `--help`, flag errors, `--detach`,
`stop`, `edit` and `--list-runs` are instant.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Sequence

from steplr_tui.cli.branch import main as branch_main
from steplr_tui.cli.commands import (
    attach_main,
    detach_main,
    edit_main,
    export_main,
    headless_job,
    run_main,
    say_after,
    stop_main,
)
from steplr_tui.cli.options import parse_options

COMMANDS = ("attach", "stop", "edit", "export", "sweep", "branch", "_run")


def sweep_main(argv: Sequence[str]) -> int:
    """`steplr-tui sweep`, imported when asked for: the dashboard's first frame needs none
    of the study's modules."""
    from steplr_tui.cli.sweep import main

    return main(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `steplr-tui` and `python -m steplr_tui`."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] and args[0] in COMMANDS:
        return {
            "attach": attach_main,
            "stop": stop_main,
            "edit": edit_main,
            "export": export_main,
            "sweep": sweep_main,
            "branch": branch_main,
            "_run": run_main,
        }[args[0]](args[1:])
    options = parse_options(args)
    for note in options.notes:
        print(f"steplr-tui: note: {note}", file=sys.stderr)
    if options.list_runs:
        from steplr_tui.cli.shell import print_runs

        return print_runs(options.runs_dir, sys.stdout)
    config = options.config
    if options.resume is not None:
        from steplr_tui.runfolder.reader import RunNotFound, read_run
        from steplr_tui.runfolder.resume import config_from_record, resume_problem

        try:
            info = read_run(options.resume)
            problem = resume_problem(info)
            config = config_from_record(info, options.config) if not problem else config
        except RunNotFound as exc:
            print(f"steplr-tui: --resume: {exc}", file=sys.stderr)
            return 2
        if problem:
            print(f"steplr-tui: --resume: {problem}", file=sys.stderr)
            return 2
    if options.detach:
        return detach_main(config, options)
    from steplr_tui.run.torchrun import launched_by_torchrun

    if launched_by_torchrun() and not options.headless:
        print(
            "steplr-tui: under torchrun, add --headless (one dashboard cannot draw for every "
            "rank); watch the run with steplr-tui attach from another terminal",
            file=sys.stderr,
        )
        return 2
    if options.headless:
        from steplr_tui.run.jobs import Job

        return headless_job(
            Job(config, options.runs_dir, options.resume, keep=options.keep), config
        )
    from steplr_tui.viewer.heap import hold_collections

    hold_collections()  # until the dashboard's first frame is out
    from steplr_tui.cli.run_side import starter
    from steplr_tui.viewer.app import SteplrApp

    app = SteplrApp(
        config,
        starter=starter(),
        start=options.start,
        runs_dir=options.runs_dir,
        resume=options.resume,
        notes=options.notes,
    )
    app.run()
    say_after(app)
    return app.return_code or 0


def entry() -> None:
    """The console script: `main`, then straight out once everything is written.

    An interpreter that imported torch takes a second or two to tear itself down
    after the last line is written (quitting the dashboard took 2 s, 0.3 s of it
    the app's own); every record is already final by then, so the process leaves
    at once.
    """
    try:
        code = main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
        if exc.code is not None and not isinstance(exc.code, int):
            print(exc.code, file=sys.stderr)
    except BrokenPipeError:  # `steplr-tui --list-runs | head -1`: a closed pipe, as Unix tools
        _quiet_stdout()
        code = 141
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BrokenPipeError:
            _quiet_stdout()
            code = code or 141
        except (OSError, ValueError):
            pass
    if "torch" not in sys.modules:
        sys.exit(code)  # nothing slow to tear down: leave the normal way
    os._exit(code)


def _quiet_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's last flush finds no closed pipe."""
    with contextlib.suppress(OSError, ValueError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


if __name__ == "__main__":
    entry()
