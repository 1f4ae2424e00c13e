"""What a sweep costs and gains, on full MNIST:

    STEPLR_TUI_DATA=../shared/data python benchmarks/sweep.py [--quick]

- a 16-trial sweep, 6 epochs each, `--parallel 2`, against 16 runs of the classic
  script (benchmarks/reference.py) back to back, and how many trials the pruner
  stopped early (`--quick`: 4 trials, and 2 reference runs scaled to 4);
- a trial's start-up: from the sweep asking for it to its first batch's progress line;
- a trial's epoch under the sweep against the same run alone (`steplr-tui
  --headless`), at `--parallel 1`, in alternating rounds;
- the sweep view's redraw with 100 trials in its table (headless Textual).

Prints a table and writes benchmarks/results/sweep-DATE.json.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import PY, ROOT, Figure, data_root, median, print_table, write_results

TRAINER = ["--dataset", "mnist", "--no-download", "--device", "cpu"]


def _env(runs: Path) -> dict[str, str]:
    return {**os.environ, "STEPLR_TUI_RUNS": str(runs), "STEPLR_TUI_DATA": str(data_root())}


def _sweep(runs: Path, *args: str) -> float:
    start = time.perf_counter()
    subprocess.run(
        [PY, "-m", "steplr_tui", "sweep", "--runs-dir", str(runs), *TRAINER, *args],
        env=_env(runs),
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - start


def _rows(runs: Path, name: str):
    from steplr_tui.study.engine import load_study, read_trials
    from steplr_tui.study.spec import read_spec, storage_url, sweep_folder

    folder = sweep_folder(runs, name)
    study, _ = load_study(name, storage_url(read_spec(folder), folder))
    return read_trials(study)


def _first_progress(folder: Path) -> float | None:
    for line in (folder / "events.jsonl").read_text().splitlines():
        event = json.loads(line)
        if event.get("type") == "progress":
            return float(event["time"])
    return None


def figure_sweep(trials: int, reference_runs: int, epochs: int = 6) -> list[Figure]:
    with tempfile.TemporaryDirectory() as tmp:
        runs = Path(tmp)
        wall = _sweep(
            runs, "--name", "bench", "--epochs", str(epochs), "--trials", str(trials),
            "--parallel", "2", "--lr", "1e-4:1e-1:log", "--step-size", "1,2,3",
            "--gamma", "0.1:0.9",
        )  # fmt: skip
        rows = _rows(runs, "bench")
        pruned = sum(1 for r in rows if r.state == "PRUNED")
        done = sum(1 for r in rows if r.state == "COMPLETE")
        best = max((r.value for r in rows if r.value is not None), default=float("nan"))
        startups = []
        for r in rows:
            first = _first_progress(Path(r.run_folder)) if r.run_folder else None
            if first is not None and r.started is not None:
                startups.append(first - r.started)
    times = []
    for _ in range(reference_runs):
        start = time.perf_counter()
        subprocess.run(
            [PY, str(ROOT / "benchmarks" / "reference.py"), str(data_root()), str(epochs)],
            check=True,
            capture_output=True,
        )
        times.append(time.perf_counter() - start)
    reference = median(times) * trials
    scaled = (
        ""
        if reference_runs == trials
        else f" ({reference_runs} measured, x{trials / reference_runs:g})"
    )
    return [
        Figure(
            f"{trials}-trial sweep, {epochs} epochs, --parallel 2 / {trials} classic runs in a row",
            wall / reference,
            "x",
            "reported",
            None,
            f"sweep {wall:.0f} s; reference {reference:.0f} s{scaled}; best {best:.2f}%",
        ),
        Figure(
            "trials the pruner stopped early",
            float(pruned),
            "",
            "reported",
            None,
            f"of {len(rows)} ({done} completed)",
        ),
        Figure(
            "trial start-up: the sweep asks for it, to its first progress line",
            median(startups),
            "s",
            "reported",
            None,
            f"median of {len(startups)}, {min(startups):.1f} to {max(startups):.1f} s",
        ),
    ]


def _epoch_seconds(folder: Path) -> list[float]:
    metrics = [json.loads(x) for x in (folder / "metrics.jsonl").read_text().splitlines()]
    return [m["seconds"] for m in metrics[1:]]  # the first epoch warms up


def figure_epoch_under_sweep(rounds: int, epochs: int = 6) -> list[Figure]:
    """A trial's epochs in a sweep of one trial (parallel 1) against the same headless run."""
    ratios, under, alone = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(rounds):
            runs = Path(tmp) / f"r{k}"
            _sweep(
                runs, "--name", f"one{k}", "--epochs", str(epochs), "--trials", "1",
                "--gamma", "0.5,0.6", "--pruner", "none", "--seed", "0",
            )  # fmt: skip
            (row,) = _rows(runs, f"one{k}")
            swept = _epoch_seconds(Path(row.run_folder))
            params = {**row.params}
            solo = Path(tmp) / f"s{k}"
            subprocess.run(
                [PY, "-m", "steplr_tui", "--headless", *TRAINER, "--epochs", str(epochs),
                 "--gamma", str(params["gamma"]), "--runs-dir", str(solo)],
                env=_env(solo), check=True, capture_output=True,
            )  # fmt: skip
            (folder,) = [p for p in solo.iterdir() if p.is_dir()]
            single = _epoch_seconds(folder)
            under += swept
            alone += single
            ratios.append(median(swept) / median(single))
    ratio = median(ratios)
    return [
        Figure(
            "a trial's epoch under a sweep (parallel 1) / the same run alone",
            ratio,
            "x",
            "<= 1.05x",
            ratio <= 1.05,
            f"{rounds} alternating rounds, rounds {', '.join(f'{r:.2f}' for r in ratios)}; "
            f"{median(under) * 1e3:.0f} ms vs {median(alone) * 1e3:.0f} ms an epoch",
        )
    ]


def figure_view_redraw(trials: int = 100, repeats: int = 20) -> list[Figure]:
    """SweepScreen.show() and the frame after it, at 120x40, with 100 trials: a new
    snapshot whose trials moved on an epoch (the table updated in place: what a live
    sweep does each second), and the table re-sorted (its rows rebuilt)."""
    import dataclasses

    from steplr_tui.runfolder.params import TrainConfig
    from steplr_tui.viewer.app import SteplrApp
    from steplr_tui.viewer.screens.sweep import SweepScreen
    from tests.fakes import FixedSweepSource, sweep_snapshot

    in_place: list[float] = []
    resorted: list[float] = []

    def moved_on(snapshot, k: int):
        rows = [
            dataclasses.replace(r, curve={**r.curve, max(r.curve) + 1: 80.0 + k % 7})
            if r.state == "RUNNING"
            else r
            for r in snapshot.rows
        ]
        return dataclasses.replace(snapshot, rows=rows)

    async def measure() -> None:
        with tempfile.TemporaryDirectory() as tmp:
            snapshot = sweep_snapshot(Path(tmp), trials=trials, running=4)
            app = SteplrApp(TrainConfig(), warm_up=False, cursor_blink=False)
            async with app.run_test(size=(120, 40)) as pilot:
                await pilot.pause()
                app.screen.open_sweep(snapshot.folder, snapshot.spec, FixedSweepSource(snapshot))
                while not (isinstance(app.screen, SweepScreen) and app.screen.snapshot):
                    await pilot.pause(0.01)
                screen = app.screen
                for k in range(repeats):
                    start = time.perf_counter()
                    screen.show(moved_on(snapshot, k))
                    await pilot.pause()
                    in_place.append(time.perf_counter() - start)
                for k in range(repeats):
                    screen.sort_key = ("trial", "last")[k % 2]
                    start = time.perf_counter()
                    screen.show(snapshot)
                    await pilot.pause()
                    resorted.append(time.perf_counter() - start)

    asyncio.run(measure())
    live, sort = median(in_place) * 1e3, median(resorted) * 1e3
    return [
        Figure(
            f"sweep view redraw with {trials} trials, a second of a live sweep, 120x40",
            live,
            "ms",
            "<= 100 ms",
            live <= 100,
            f"median of {repeats}, worst {max(in_place) * 1e3:.0f} ms (table in place, 3 panes)",
        ),
        Figure(
            f"sweep view redraw with {trials} trials, the table re-sorted",
            sort,
            "ms",
            "reported",
            None,
            f"median of {repeats}, worst {max(resorted) * 1e3:.0f} ms (every row rebuilt)",
        ),
    ]


def figures(quick: bool) -> list[Figure]:
    out = figure_view_redraw()
    out += figure_epoch_under_sweep(2 if quick else 3)
    out += figure_sweep(4 if quick else 16, 2 if quick else 16)
    return out


if __name__ == "__main__":
    quick = "--quick" in sys.argv
    started = time.time()
    found = figures(quick)
    print_table(found)
    stamp = time.strftime("%Y-%m-%d")
    write_results(
        ROOT / "benchmarks" / "results" / f"sweep-{stamp}.json",
        "sweep.py" + (" --quick" if quick else ""),
        {"figures": [f.__dict__ for f in found]},
        started,
    )
