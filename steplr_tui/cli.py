"""Command line: flags for every parameter, then the dashboard or the headless run.

Parsing imports neither torch nor Textual, so `--help` and flag errors are instant.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from steplr_tui import __version__
from steplr_tui.config import SPECS, FieldError, TrainConfig

EPILOG = """\
keys in the dashboard: ctrl+r start, ctrl+s stop, ctrl+o runs, ctrl+q quit; tab/shift+tab
move between fields; up/down nudge a number. While a run trains, lr, step_size and gamma
stay editable: enter queues the edit for the next epoch boundary. f2 x axis epochs/iterations,
f3 LR log/linear, f4 loss per batch/per epoch, f5 phase table, f6 export, f7 pin as overlay.
export: steplr-tui export RUN [--csv] prints a PyTorch snippet for a recorded run; --csv
also writes its metrics.csv beside metrics.jsonl.
data: --data-dir, else $STEPLR_TUI_DATA, else a per-user cache folder. With
--dataset auto, a machine that cannot download MNIST trains on the bundled sample.
"""


class _OneLineParser(argparse.ArgumentParser):
    """argparse prints usage plus an error; a flag error here is one line, exit 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"steplr-tui: {message} (see steplr-tui --help)\n")

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[override]
        ns, rest = super().parse_known_args(args, namespace)
        # argparse drops a value of exactly "--" (`--lr=--`) and leaves an empty
        # list; put the text back so it is refused like any other bad value.
        for name, value in vars(ns).items():
            if value == []:
                setattr(ns, name, "--")
        return ns, rest


@dataclass(frozen=True)
class Options:
    """What the command line asked for."""

    config: TrainConfig
    headless: bool
    start: bool
    runs_dir: Path = Path()
    resume: Path | None = None
    list_runs: bool = False


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(
        prog="steplr-tui",
        description="Set PyTorch's StepLR, preview its staircase, and watch MNIST train.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    defaults = TrainConfig()
    params = parser.add_argument_group("training parameters")
    for spec in SPECS.values():
        params.add_argument(
            spec.flag,
            dest=spec.name,
            metavar=spec.name.upper()
            if spec.kind != "choice"
            else "{" + ",".join(spec.choices) + "}",
            help=f"{spec.help}: {spec.rule} (default: {spec.format(getattr(defaults, spec.name))})",
        )
    data = parser.add_argument_group("data")
    data.add_argument("--data-dir", metavar="DIR", help="where MNIST is, or is downloaded to")
    data.add_argument(
        "--no-download", action="store_true", help="never try to download MNIST (offline clusters)"
    )
    runs = parser.add_argument_group("run records")
    runs.add_argument(
        "--runs-dir",
        metavar="DIR",
        help="where run records go (default: $STEPLR_TUI_RUNS, else a per-user data folder)",
    )
    runs.add_argument(
        "--resume",
        metavar="RUN",
        help="continue a stopped or interrupted run (its folder, or its name in the runs folder)",
    )
    runs.add_argument("--list-runs", action="store_true", help="list recorded runs and exit")
    run = parser.add_argument_group("run")
    run.add_argument("--start", action="store_true", help="start training at launch")
    run.add_argument(
        "--headless",
        action="store_true",
        help="no UI: train and print each epoch in the reference format",
    )
    parser.add_argument("--version", action="version", version=f"steplr-tui {__version__}")
    return parser


def parse_options(argv: Sequence[str] | None = None) -> Options:
    """Parse and validate flags; a bad value exits 2 with one line naming the flag and rule."""
    parser = build_parser()
    ns = parser.parse_args(argv)
    values = {}
    for spec in SPECS.values():
        text = getattr(ns, spec.name)
        if text is None:
            continue
        try:
            values[spec.name] = spec.parse(text, who=spec.flag)
        except FieldError as exc:
            parser.exit(2, f"steplr-tui: {exc}\n")
    for flag, value in (("--data-dir", ns.data_dir), ("--runs-dir", ns.runs_dir)):
        if value is not None and not value.strip():
            parser.exit(2, f"steplr-tui: {flag} is empty: give a folder path\n")
    config = TrainConfig(**values, data_dir=ns.data_dir, download=not ns.no_download)
    from steplr_tui.runs import RunNotFound, find_run, resolve_runs_dir

    runs_dir = resolve_runs_dir(ns.runs_dir)
    resume = None
    if ns.resume is not None:
        fixed = [SPECS[name].flag for name in values if name != "device"]
        if fixed:
            parser.exit(
                2,
                f"steplr-tui: --resume continues a run with its recorded parameters; "
                f"drop {', '.join(fixed)}\n",
            )
        try:
            resume = find_run(ns.resume, runs_dir)
        except RunNotFound as exc:
            parser.exit(2, f"steplr-tui: --resume: {exc}\n")
    return Options(
        config=config,
        headless=ns.headless,
        start=ns.start,
        runs_dir=runs_dir,
        resume=resume,
        list_runs=ns.list_runs,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `steplr-tui` and `python -m steplr_tui`."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["export"]:
        return export_main(args[1:])
    options = parse_options(args)
    if options.list_runs:
        return print_runs(options.runs_dir)
    config = options.config
    if options.resume is not None:
        from steplr_tui.jobs import config_from_record, resume_problem
        from steplr_tui.runs import RunNotFound, read_run

        try:
            info = read_run(options.resume)
            config = config_from_record(info, options.config)
        except RunNotFound as exc:
            print(f"steplr-tui: --resume: {exc}", file=sys.stderr)
            return 2
        problem = resume_problem(info)
        if problem:
            print(f"steplr-tui: --resume: {problem}", file=sys.stderr)
            return 2
    from steplr_tui.jobs import Job

    job = Job(config, options.runs_dir, options.resume)
    if options.headless:
        from steplr_tui.headless import run_headless

        return run_headless(job)
    from steplr_tui.app import SteplrApp

    app = SteplrApp(config, start=options.start, runs_dir=options.runs_dir, resume=options.resume)
    app.run()
    return app.return_code or 0


def export_main(argv: Sequence[str]) -> int:
    """`steplr-tui export RUN [--csv]`: the snippet on stdout, the CSV beside the record."""
    parser = _OneLineParser(
        prog="steplr-tui export",
        description="Print a PyTorch snippet that reproduces a recorded run's schedule.",
        allow_abbrev=False,
    )
    parser.add_argument("run", metavar="RUN", help="a run folder, or a run name (as for --resume)")
    parser.add_argument(
        "--csv", action="store_true", help="also write metrics.csv beside the run's metrics.jsonl"
    )
    parser.add_argument("--runs-dir", metavar="DIR", help="where run records are")
    ns = parser.parse_args(argv)
    from steplr_tui.export import run_snippet, write_csv
    from steplr_tui.runs import RunNotFound, find_run, read_run, resolve_runs_dir

    if ns.runs_dir is not None and not ns.runs_dir.strip():
        parser.exit(2, "steplr-tui export: --runs-dir is empty: give a folder path\n")
    try:
        info = read_run(find_run(ns.run, resolve_runs_dir(ns.runs_dir)))
    except RunNotFound as exc:
        print(f"steplr-tui export: {exc}", file=sys.stderr)
        return 2
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
        print(f"steplr-tui: wrote {path} ({len(info.metrics)} epochs)", file=sys.stderr)
    print(run_snippet(info), end="")
    return 0


def print_runs(runs_dir: Path) -> int:
    """`--list-runs`: one line per recorded run, newest first."""
    from steplr_tui.runs import SUMMARY_COLUMNS, list_runs, summary_row

    runs = list_runs(runs_dir)
    if not runs:
        print(f"no runs in {runs_dir}")
        return 0
    rows = [SUMMARY_COLUMNS, *(summary_row(run) for run in runs)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(SUMMARY_COLUMNS))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
    print(f"({len(runs)} runs in {runs_dir})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
