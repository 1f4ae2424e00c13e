"""Sweeps that share their prefixes, against independent trials, on full MNIST:

    STEPLR_TUI_DATA=../shared/data python benchmarks/shared_prefix.py [--quick] [--threads N]

A grid of step_size {2, 4, 6, 8} x gamma {0.1, 0.3, 0.5, 0.7} at lr 1e-3, 10 epochs
each, `--parallel 1`: once with shared prefixes (the default) and once with
`--no-share`, in this one run. Reports the epochs each trained (read from the run
folders: a branch trains from its branch point on), the wall time of each sweep,
and checks that every trial's final accuracy equals its independent twin's, bit for
bit. `--quick`: step_size {2, 4} x gamma {0.1, 0.5}, 5 epochs.

Prints a table and writes benchmarks/results/shared-prefix-DATE.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import PY, ROOT, data_root


def _sweep(runs: Path, name: str, args: list[str]) -> float:
    env = {**os.environ, "STEPLR_TUI_RUNS": str(runs), "STEPLR_TUI_DATA": str(data_root())}
    start = time.perf_counter()
    subprocess.run(
        [PY, "-m", "steplr_tui", "sweep", "--runs-dir", str(runs), "--name", name, *args],
        env=env,
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - start


def _account(runs: Path, name: str) -> tuple[int, dict[tuple, float], int, dict[str, list]]:
    """(epochs trained, final objective by (step_size, gamma), run folders, and each
    trial's last epoch: lr, train_loss, test_acc)."""
    from steplr_tui.run.branch import branch_of
    from steplr_tui.runfolder.reader import list_runs
    from steplr_tui.study.engine import load_study, read_trials
    from steplr_tui.study.spec import read_spec, storage_url, sweep_folder

    folders = list_runs(runs)
    trained = 0
    last: dict[str, list] = {}
    for info in folders:
        section = branch_of(info)
        trained += info.epochs_done - (section["epoch"] if section else 0)
        if "sweep" in info.meta and info.metrics:
            m = info.metrics[-1]
            key = f"s{info.config['step_size']}-g{info.config['gamma']:g}"
            last[key] = [m["epoch"], m["lr"], m["train_loss"], m["test_acc"]]
    folder = sweep_folder(runs, name)
    study, _ = load_study(name, storage_url(read_spec(folder), folder))
    finals = {
        (r.params["step_size"], r.params["gamma"]): r.value
        for r in read_trials(study)
        if r.state == "COMPLETE"
    }
    return trained, finals, len(folders), dict(sorted(last.items()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--threads", default="1", help="each trial's threads (default 1)")
    parser.add_argument(
        "--rounds", type=int, default=1, help="rounds, the order alternating (default 1)"
    )
    ns = parser.parse_args()
    steps, gammas, epochs = (
        ("2,4", "0.1,0.5", 5) if ns.quick else ("2,4,6,8", "0.1,0.3,0.5,0.7", 10)
    )
    common = [
        "--lr", "0.001", "--step-size", steps, "--gamma", gammas, "--epochs", str(epochs),
        "--dataset", "mnist", "--no-download", "--device", "cpu", "--threads", ns.threads,
        "--pruner", "none", "--parallel", "1",
    ]  # fmt: skip
    results: dict[str, dict] = {}
    modes = [("shared prefixes", []), ("independent (--no-share)", ["--no-share"])]
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(ns.rounds):
            # The machine's load drifts: alternate which goes first.
            for label, extra in modes if round_ % 2 == 0 else modes[::-1]:
                runs = Path(tmp) / f"{label.split()[0]}-{round_}"
                wall = _sweep(runs, "bench", [*common, *extra])
                trained, finals, folders, last = _account(runs, "bench")
                r = results.setdefault(label, {"walls_s": []})
                r["walls_s"].append(round(wall, 1))
                r.update(
                    epochs_trained=trained,
                    run_folders=folders,
                    finals={f"s{s}-g{g:g}": v for (s, g), v in sorted(finals.items())},
                    last_epochs=last,
                )
                print(f"{label}: {trained} epochs, {wall:.0f} s", file=sys.stderr)
    for r in results.values():
        r["wall_s"] = sorted(r["walls_s"])[len(r["walls_s"]) // 2]
    shared, alone = results["shared prefixes"], results["independent (--no-share)"]
    # The objective, and the last epoch's lr, loss and accuracy, as floats: bit for bit.
    identical = (
        shared["finals"] == alone["finals"]
        and shared["last_epochs"] == alone["last_epochs"]
        and len(shared["last_epochs"]) == len(alone["finals"]) > 0
    )
    print(f"{'':28}{'epochs trained':>16}{'wall time':>12}{'trials':>8}")
    for label, r in results.items():
        trials = len(r["finals"])
        walls = ", ".join(f"{w:.0f}" for w in r["walls_s"])
        print(f"{label:28}{r['epochs_trained']:>16}{r['wall_s']:>11.0f}s{trials:>8}  ({walls})")
    print(
        f"shared/independent: {shared['epochs_trained'] / alone['epochs_trained']:.2f} of the "
        f"epochs, {shared['wall_s'] / alone['wall_s']:.2f} of the wall time; every final "
        f"accuracy bit-identical to its twin's: {identical}"
    )
    out = ROOT / "benchmarks" / "results" / f"shared-prefix-{time.strftime('%Y-%m-%d')}.json"
    payload = {
        "grid": {"step_size": steps, "gamma": gammas, "epochs": epochs, "lr": 0.001},
        "threads": ns.threads,
        "rounds": ns.rounds,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "results": results,
        "finals_identical": identical,
    }
    out.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {out}")
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
