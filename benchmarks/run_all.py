"""Every steplr-tui benchmark, measured side by side, as a table and as JSON.

Usage:
    STEPLR_TUI_DATA=../shared/data python benchmarks/run_all.py [--quick] [--device cpu|cuda]
        [--json PATH] [--only GROUP,...]

Each comparison is a ratio of two things measured in the same run, repeated, with
the median reported: the machines are shared and noisy, so absolute seconds alone
mean little. Needs full MNIST (STEPLR_TUI_DATA) and tmux for the UI figures.

This file is the registry of figure groups; the figures live in training.py, ui.py
and run_folder.py, and what they share in harness.py.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import run_folder
import training
import ui
from harness import RESULTS, Figure, print_table, write_results

# A group's measure: (its figures, extra tables for the JSON, by key).
Measured = tuple[list[Figure], dict[str, object]]


@dataclass(frozen=True)
class Group:
    """Figures measured together: what they say, how to measure them, on which devices."""

    about: str
    measure: Callable[[argparse.Namespace], Measured]
    devices: tuple[str, ...] = ("cpu",)


def _render(args: argparse.Namespace) -> Measured:
    figures, table = ui.figure_render()
    return figures, {"render_ms_by_epochs": table}


def _scaling(args: argparse.Namespace) -> Measured:
    figures, table = training.figure_scaling(args.device, args.quick)
    return figures, {"scaling": table}


GROUPS: dict[str, Group] = {
    "speed": Group(
        "training speed and accuracy against the reference pipeline",
        lambda a: (training.figure_speed(1 if a.quick else 2, a.device), {}),
        ("cpu", "cuda"),
    ),
    "ui": Group(
        "the TUI's cost to a run, and a key's way to the screen (tmux)",
        lambda a: (
            ui.figure_ui_overhead(4 if a.quick else 20)
            + ui.figure_key_latency(6 if a.quick else 20),
            {},
        ),
    ),
    "bytes": Group(
        "bytes to the terminal while training",
        lambda a: (ui.figure_bytes(10 if a.quick else 40), {}),
    ),
    "ttff": Group(
        "time to first frame, against a bare Textual app's",
        lambda a: (ui.figure_first_frame((1 if a.quick else 3) + 2), {}),
    ),
    "render": Group("the plot panes' redraw, and how it grows with the run", _render),
    "memory": Group(
        "peak memory against a bare script",
        lambda a: (training.figure_memory(1 if a.quick else 3), {}),
    ),
    "scaling": Group("epoch time by batch size and data size", _scaling, ("cpu", "cuda")),
    "compile": Group(
        "torch.compile against steplr-tui's step",
        lambda a: (training.figure_compile(a.device, a.quick), {}),
        ("cpu", "cuda"),
    ),
    "folder": Group(
        "the run folder: detach, attach, viewers (run_folder.py)",
        lambda a: (run_folder.figures(a.quick), {}),
    ),
}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (a smoke run)")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--json", type=Path, help="where to write the JSON (default: results/)")
    parser.add_argument(
        "--only",
        help="comma-separated figure groups: "
        + "; ".join(f"{name} ({group.about})" for name, group in GROUPS.items()),
    )
    args = parser.parse_args()
    names = args.only.split(",") if args.only else list(GROUPS)
    unknown = [name for name in names if name not in GROUPS]
    if unknown:
        parser.error(f"no figure group {', '.join(unknown)}: pick from {', '.join(GROUPS)}")
    names = [name for name in names if args.device in GROUPS[name].devices]
    figures: list[Figure] = []
    tables: dict[str, object] = {"scaling": None, "render_ms_by_epochs": None}
    started = time.time()
    for name in names:
        t0 = time.monotonic()
        more, extra = GROUPS[name].measure(args)
        figures += more
        tables.update(extra)
        print(f"[{name}: {time.monotonic() - t0:.0f}s]", file=sys.stderr, flush=True)
    print_table(figures)
    out = args.json or RESULTS / f"{args.device}-{time.strftime('%Y-%m-%d')}.json"
    write_results(
        out,
        " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        {"figures": [asdict(f) for f in figures], **tables},
        started=started,
        device=args.device,
    )


if __name__ == "__main__":
    main()
