"""The command line's flags: every parameter as a flag, validated through the fields' rules,
and the small parsers the commands share. A bad flag is one line and exit status 2.

Parsing imports neither torch nor Textual, so `--help` and flag errors are instant.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from steplr_tui import __version__
from steplr_tui.runfolder.checkpoints import KeepError, KeepPolicy
from steplr_tui.runfolder.params import (
    SCHEDULER_HELP,
    SCHEDULER_KINDS,
    SPECS,
    FieldError,
    TrainConfig,
)

USAGE = """\
steplr-tui [flags]            the dashboard (--headless, --detach: no UI)
       steplr-tui COMMAND [...]      one of the commands below"""

COMMANDS_HELP = """\
commands (steplr-tui COMMAND --help for each):
  attach [RUN]          watch and steer a run from this terminal
  stop RUN [--wait S]   stop a run at its next batch
  edit RUN [--lr X] [--step-size N] [--gamma G] [--milestones E,..] [--warmup N]
                        queue a live edit for the next epoch boundary
  export RUN [--csv] [--tensorboard DIR]
                        a run's PyTorch snippet, metrics.csv, TensorBoard files
  branch RUN --at EPOCH [--lr X] [--step-size N] [--gamma G] [--epochs N]
                        a new run from RUN's checkpoint after EPOCH, edited
  sweep [--lr SPACE] [--trials N] [--parallel K] [--view NAME] ...
                        tune lr, step_size and gamma: trials on Optuna
"""

EPILOG = (
    COMMANDS_HELP
    + """
keys in the dashboard (f1 lists them all, ctrl+p searches the actions):
  ctrl+r start here   ctrl+n start detached   ctrl+s stop   ctrl+o runs
  ctrl+q quit (a detached or attached run goes on)   tab/shift+tab fields
  up/down nudge a number; while a run trains, the fields its scheduler takes
  edits of (StepLR: lr, step_size, gamma) stay editable and enter queues the
  edit for the next epoch boundary.
RUN is a run folder, a run name, or the start of one (--list-runs shows them).
data: --data-dir, else $STEPLR_TUI_DATA, else a per-user cache folder. With
--dataset auto, a machine that cannot download MNIST trains on a bundled sample.
under torchrun: torchrun --nproc-per-node N -m steplr_tui --headless [flags]
"""
)


class OneLineParser(argparse.ArgumentParser):
    """argparse prints usage plus an error; a flag error here is one line, exit 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")

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
    detach: bool = False
    nproc: int = 1
    notes: tuple[str, ...] = ()
    keep: KeepPolicy | None = None


def _add_param_flags(parser: argparse.ArgumentParser) -> None:
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
    params.add_argument(
        "--scheduler",
        metavar="{" + ",".join(SCHEDULER_KINDS) + "}",
        help=f"the lr scheduler (default: step): {SCHEDULER_HELP}",
    )
    params.add_argument(
        "--milestones",
        metavar="E1,E2",
        help="with --scheduler multistep: increasing epochs, like 4,6 (default: every step_size)",
    )
    params.add_argument(
        "--warmup",
        metavar="EPOCHS",
        help="with --scheduler warmup-step: the warmup's length in epochs (default: 1)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="steplr-tui",
        usage=USAGE,
        description="Set PyTorch's StepLR, preview its staircase, and watch MNIST train.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    _add_param_flags(parser)
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
    runs.add_argument(
        "--keep-checkpoints",
        metavar="EPOCHS",
        help="besides the latest and those where the lr changes, keep checkpoints to branch "
        "from: all, or epochs such as 2,5",
    )
    runs.add_argument(
        "--list-runs", action="store_true", help="list recorded runs (running ones with their pid)"
    )
    run = parser.add_argument_group("run")
    run.add_argument("--start", action="store_true", help="start training at launch")
    run.add_argument(
        "--headless",
        action="store_true",
        help="no UI: train and print each epoch in the reference format",
    )
    run.add_argument(
        "--detach",
        action="store_true",
        help="train in a background process that outlives the terminal; attach to watch it",
    )
    run.add_argument(
        "--nproc-per-node",
        metavar="N",
        help="with --detach: train with DDP over N processes (torchrun)",
    )
    parser.add_argument("--version", action="version", version=f"steplr-tui {__version__}")
    return parser


def _fail(parser: argparse.ArgumentParser, message: str) -> None:
    parser.exit(2, f"steplr-tui: {message}\n")


def _scheduler_values(parser: argparse.ArgumentParser, ns: argparse.Namespace) -> dict:
    """--scheduler, --milestones, --warmup: each checked, in one line naming the fix."""
    from steplr_tui.runfolder.schedule import parse_milestones

    values: dict = {}
    if ns.scheduler is not None:
        kind = ns.scheduler.strip().lower()
        if kind not in SCHEDULER_KINDS:
            _fail(
                parser,
                f"--scheduler must be one of {', '.join(SCHEDULER_KINDS)} "
                f"(got {ns.scheduler!r:.30})",
            )
        values["scheduler"] = kind
    kind = values.get("scheduler", "step")
    if ns.milestones is not None:
        if kind != "multistep":
            _fail(parser, "--milestones goes with --scheduler multistep")
        try:
            values["milestones"] = parse_milestones(ns.milestones, "--milestones")
        except ValueError as exc:
            _fail(parser, str(exc))
    if ns.warmup is not None:
        if kind != "warmup-step":
            _fail(parser, "--warmup goes with --scheduler warmup-step")
        text = ns.warmup.strip()
        if not text.isascii() or not text.isdigit() or int(text) < 1:
            _fail(
                parser, f"--warmup must be a whole number of epochs from 1 (got {ns.warmup!r:.30})"
            )
        values["warmup"] = int(text)
    return values


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
            _fail(parser, str(exc))
    values.update(_scheduler_values(parser, ns))
    for flag, value in (("--data-dir", ns.data_dir), ("--runs-dir", ns.runs_dir)):
        if value is not None and not value.strip():
            _fail(parser, f"{flag} is empty: give a folder path")
    from steplr_tui.runfolder.paths import data_dir_problem

    problem = data_dir_problem(ns.data_dir)
    if problem:
        _fail(parser, problem)
    nproc = 1
    if ns.nproc_per_node is not None:
        text = ns.nproc_per_node.strip()
        if not text.isdigit() or not 1 <= int(text) <= 64:
            _fail(parser, f"--nproc-per-node must be a whole number from 1 to 64 (got {text!r})")
        nproc = int(text)
        if not ns.detach:
            _fail(
                parser,
                "--nproc-per-node goes with --detach; in the foreground, run "
                "torchrun --nproc-per-node N -m steplr_tui --headless [flags]",
            )
    if ns.detach and ns.headless:
        _fail(parser, "--detach runs headless already, in the background: drop --headless")
    config = TrainConfig(**values, data_dir=ns.data_dir, download=not ns.no_download)
    try:
        config.validated()
    except FieldError as exc:
        _fail(parser, f"--{exc}")
    keep = None
    if ns.keep_checkpoints is not None:
        try:
            keep = KeepPolicy.parse(ns.keep_checkpoints)
        except KeepError as exc:
            _fail(parser, str(exc))
        if ns.resume is not None:
            _fail(
                parser,
                "--keep-checkpoints is for a new run; a resumed run keeps what it started "
                "with: drop --keep-checkpoints",
            )
    notes = []
    if "momentum" in values and config.optimizer != "sgd":
        notes.append(
            f"--momentum is ignored: {config.optimizer} has no momentum "
            "(it applies to --optimizer sgd)"
        )
    from steplr_tui.runfolder.reader import RunNotFound, find_run, resolve_runs_dir

    runs_dir = resolve_runs_dir(ns.runs_dir)
    resume = None
    if ns.resume is not None:
        fixed = [
            SPECS[name].flag if name in SPECS else "--" + name
            for name in values
            if name not in ("device", "threads")
        ]
        if fixed:
            _fail(
                parser,
                f"--resume continues a run with its recorded parameters; drop {', '.join(fixed)}",
            )
        try:
            resume = find_run(ns.resume, runs_dir)
        except RunNotFound as exc:
            _fail(parser, f"--resume: {exc}")
    return Options(
        config=config,
        headless=ns.headless,
        start=ns.start,
        runs_dir=runs_dir,
        resume=resume,
        list_runs=ns.list_runs,
        detach=ns.detach,
        nproc=nproc,
        notes=tuple(notes),
        keep=keep,
    )


def command_parser(prog: str, description: str) -> OneLineParser:
    return OneLineParser(prog=prog, description=description, allow_abbrev=False)


def find_run_or_exit(parser: argparse.ArgumentParser, spec: str, runs_dir: str | None) -> Path:
    """The run folder RUN names; a bad RUN exits 2 with one line saying how to find one."""
    from steplr_tui.runfolder.reader import RunNotFound, find_run, resolve_runs_dir

    if runs_dir is not None and not runs_dir.strip():
        parser.exit(2, f"{parser.prog}: --runs-dir is empty: give a folder path\n")
    try:
        return find_run(spec, resolve_runs_dir(runs_dir))
    except RunNotFound as exc:
        from steplr_tui.runfolder.text import clean_text

        print(f"{parser.prog}: {clean_text(exc)}", file=sys.stderr)  # folder names in it
        raise SystemExit(2) from None


def need_run(parser: argparse.ArgumentParser, run: str | None) -> None:
    if run is None:
        parser.exit(
            2,
            f"{parser.prog}: give a RUN: a run folder or a run name "
            "(steplr-tui --list-runs shows them)\n",
        )
