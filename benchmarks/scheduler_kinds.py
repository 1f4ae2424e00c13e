"""StepLR against its alternatives, on full MNIST with the cnn model: the same trial
budget per scheduler kind, and what each kind reached.

    STEPLR_TUI_DATA=../shared/data python benchmarks/scheduler_kinds.py
        [--trials 12] [--epochs 5] [--kinds step,multistep,warmup-step,cosine,plateau]
        [--quick]

Each kind gets its own sweep (`steplr-tui sweep --scheduler KIND`), so each has exactly
`--trials` trials, over the same search space: lr on a log range, and step_size and
gamma where the kind has them (multistep's milestones are every step_size epochs,
warmup-step warms up for 1 epoch, plateau's factor is gamma). No pruner, so every
trial trains every epoch and the spread is over the whole budget. Two trials at a
time, one thread each. `--quick`: 2 trials of 1 epoch per kind (a smoke run).

Prints one line per kind (best, median, worst final accuracy, and the best trial's
parameters) and writes benchmarks/results/scheduler-kinds-DATE.json.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import PY, ROOT, data_root, write_results

KINDS = ("step", "multistep", "warmup-step", "cosine", "plateau")
SPACE = ["--lr", "1e-4:1e-2:log", "--step-size", "1,2,3", "--gamma", "0.1:0.9"]
# What each kind uses of the space (cosine anneals over the run: lr alone).
USES = {"cosine": ("lr",)}


def sweep_kind(runs: Path, kind: str, trials: int, epochs: int) -> dict:
    env = {**os.environ, "STEPLR_TUI_RUNS": str(runs), "STEPLR_TUI_DATA": str(data_root())}
    env["PYTHONPATH"] = str(ROOT)
    started = time.perf_counter()
    subprocess.run(
        [PY, "-m", "steplr_tui", "sweep", "--runs-dir", str(runs), "--name", kind,
         "--scheduler", kind, *SPACE, "--model", "cnn", "--dataset", "mnist",
         "--no-download", "--device", "cpu", "--threads", "1", "--epochs", str(epochs),
         "--trials", str(trials), "--parallel", "2", "--pruner", "none", "--seed", "0"],
        env=env, check=True, capture_output=True,
    )  # fmt: skip
    wall = time.perf_counter() - started
    from steplr_tui.study.engine import load_study, read_trials
    from steplr_tui.study.spec import read_spec, storage_url, sweep_folder

    folder = sweep_folder(runs, kind)
    study, _ = load_study(kind, storage_url(read_spec(folder), folder))
    rows = read_trials(study)
    done = [r for r in rows if r.state == "COMPLETE" and r.value is not None]
    if not done:
        raise SystemExit(f"scheduler_kinds: no {kind} trial completed")
    values = sorted(float(r.value) for r in done)
    best = max(done, key=lambda r: float(r.value))
    uses = USES.get(kind, ("lr", "step_size", "gamma"))
    return {
        "kind": kind,
        "trials": len(rows),
        "completed": len(done),
        "best": values[-1],
        "median": statistics.median(values),
        "worst": values[0],
        "spread": values[-1] - values[0],
        "values": values,
        "best_params": {k: v for k, v in best.params.items() if k in uses},
        "wall_s": wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--quick", action="store_true", help="2 trials of 1 epoch per kind")
    parser.add_argument("--json", type=Path, help="where to write the JSON (default: results/)")
    args = parser.parse_args()
    if args.quick:
        args.trials, args.epochs = 2, 1
    kinds = [k for k in args.kinds.split(",") if k]
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        parser.error(f"--kinds: no kind {', '.join(unknown)}: pick from {', '.join(KINDS)}")
    started = time.time()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in kinds:
            result = sweep_kind(Path(tmp), kind, args.trials, args.epochs)
            results.append(result)
            print(
                f"{kind:12} best {result['best']:.2f}%  median {result['median']:.2f}%  "
                f"worst {result['worst']:.2f}%  ({result['completed']} of {result['trials']} "
                f"trials, {result['wall_s']:.0f} s)  best at {result['best_params']}",
                flush=True,
            )
    out = args.json or ROOT / "benchmarks" / "results" / (
        f"scheduler-kinds-{time.strftime('%Y-%m-%d')}.json"
    )
    write_results(
        out,
        " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        {
            "model": "cnn",
            "dataset": "mnist",
            "trials_per_kind": args.trials,
            "epochs": args.epochs,
            "space": " ".join(SPACE),
            "kinds": results,
        },
        started=started,
    )


if __name__ == "__main__":
    main()
