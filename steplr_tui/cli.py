"""Command line: flags for every parameter, then the dashboard or the headless run.

Parsing imports neither torch nor Textual, so `--help` and flag errors are instant.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from steplr_tui import __version__
from steplr_tui.config import SPECS, FieldError, TrainConfig

EPILOG = """\
keys in the dashboard: ctrl+r start, ctrl+s stop, ctrl+q quit; tab/shift+tab move
between fields; up/down nudge a number.
data: --data-dir, else $STEPLR_TUI_DATA, else a per-user cache folder. With
--dataset auto, a machine that cannot download MNIST trains on the bundled sample.
"""


class _OneLineParser(argparse.ArgumentParser):
    """argparse prints usage plus an error; a flag error here is one line, exit 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"steplr-tui: {message} (see steplr-tui --help)\n")


@dataclass(frozen=True)
class Options:
    """What the command line asked for."""

    config: TrainConfig
    headless: bool
    start: bool


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
    if ns.data_dir is not None and not ns.data_dir.strip():
        parser.exit(2, "steplr-tui: --data-dir is empty: give a folder path\n")
    config = TrainConfig(**values, data_dir=ns.data_dir, download=not ns.no_download)
    return Options(config=config, headless=ns.headless, start=ns.start)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `steplr-tui` and `python -m steplr_tui`."""
    options = parse_options(argv)
    if options.headless:
        from steplr_tui.headless import run_headless

        return run_headless(options.config)
    from steplr_tui.app import SteplrApp

    app = SteplrApp(options.config, start=options.start)
    app.run()
    return app.return_code or 0


if __name__ == "__main__":
    sys.exit(main())
