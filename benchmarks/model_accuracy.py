"""The built-in trainer's test accuracy after the 5 reference epochs, per model.

Each model (`--model linear`, `mlp`, `cnn`) trains on full MNIST with the
reference parameters (Adam lr 1e-3, StepLR step_size 2 gamma 0.1, batch 64,
seed 0), through `steplr_tui.run.jobs.run_job` as `steplr-tui --headless` does, and
its final test accuracy is compared with what the model should reach.

Usage:
    STEPLR_TUI_DATA=../shared/data python benchmarks/model_accuracy.py
        [--models linear mlp cnn] [--epochs 5] [--device cpu] [--threads N] [--json PATH]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from harness import ROOT, write_results

# Final test accuracy (%) after the 5 reference epochs: (lowest accepted, what to expect).
EXPECTED = {
    "linear": (91.0, "~92%"),
    "mlp": (97.0, ">= 97%"),
    "cnn": (98.5, ">= 98.5%"),
}


def data_root(given: str | None) -> str:
    root = given or os.environ.get("STEPLR_TUI_DATA")
    if not root or not (Path(root) / "MNIST" / "raw" / "train-images-idx3-ubyte").is_file():
        raise SystemExit(
            "model_accuracy: needs full MNIST: set STEPLR_TUI_DATA (or --data-dir) to a folder "
            "holding MNIST/raw/"
        )
    return root


def train_model(model: str, epochs: int, device: str, threads: int, root: str) -> dict:
    from steplr_tui.run.jobs import Job, run_job
    from steplr_tui.runfolder import EpochEnd, Status
    from steplr_tui.runfolder.params import TrainConfig

    config = TrainConfig(
        model=model,
        epochs=epochs,
        device=device,
        threads=threads,
        dataset="mnist",
        data_dir=root,
        download=False,
    )
    events: list = []
    started = time.perf_counter()
    end = run_job(Job(config, runs_dir=None), events.append)
    wall = time.perf_counter() - started
    if end.status is not Status.COMPLETED:
        raise SystemExit(f"model_accuracy: the {model} run ended {end.status.value}: {end.message}")
    epochs_done = [e for e in events if isinstance(e, EpochEnd)]
    accs = [e.test_acc for e in epochs_done]
    low, expected = EXPECTED[model]
    final = accs[-1]
    return {
        "model": model,
        "final_acc": final,
        "best_acc": max(accs),
        "accs": accs,
        "lrs": [e.lr for e in epochs_done],
        "train_loss": epochs_done[-1].train_loss,
        "expected": expected,
        "lowest_accepted": low,
        "ok": final >= low,
        "short_by": max(0.0, low - final),
        "train_s": sum(e.seconds - e.eval_seconds for e in epochs_done),
        "wall_s": wall,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=sorted(EXPECTED), default=list(EXPECTED))
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--json", type=Path, default=None, help="where to write the results")
    ns = parser.parse_args(argv)
    root = data_root(ns.data_dir)

    rows = []
    for model in ns.models:
        print(f"training {model} for {ns.epochs} epochs on {ns.device}…", file=sys.stderr)
        rows.append(train_model(model, ns.epochs, ns.device, ns.threads, root))

    header = ("model", "final acc", "best acc", "expected", "ok", "train s")
    table = [header] + [
        (
            r["model"],
            f"{r['final_acc']:.2f}%",
            f"{r['best_acc']:.2f}%",
            r["expected"],
            "yes" if r["ok"] else f"NO (short by {r['short_by']:.2f} points)",
            f"{r['train_s']:.1f}",
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())

    stamp = time.strftime("%Y-%m-%d")
    out = ns.json or ROOT / "benchmarks" / "results" / f"model-accuracy-{stamp}.json"
    write_results(
        out,
        " ".join(["model_accuracy.py", *(argv if argv is not None else sys.argv[1:])]),
        {
            "epochs": ns.epochs,
            "results": rows,
        },
        device=ns.device,
    )
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
