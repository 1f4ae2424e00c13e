"""What `steplr_tui.track` costs a training loop, on the CPU.

Per batch: `run.log_batch(loss)` with a float, a 0-dim tensor and one that requires
grad, and `run.should_stop()`, each against a bare loop over the same values (the
figure is the difference, in microseconds a call). The run is real: a run folder
in a temporary directory, progress events written every 0.1 s as in training.
Per epoch: `run.end_epoch()` in milliseconds, with the record's fsyncs (what a run
does), with fsync made a no-op (what the fsyncs cost), and with no record at all
(the tracker alone). For scale, one step of the reference model (Linear(784, 10),
Adam, batch 64) on this CPU. Import: `import steplr_tui` in a fresh interpreter, and
what `steplr_tui.track` imports on its first call (`steplr_tui.run.script_run`) after
`import torch`, which a script has done already; median of fresh interpreters.

Usage: python benchmarks/tracking_cost.py [--calls N] [--epochs N] [--repeats N] [--json PATH]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

import torch
from harness import ROOT, write_results
from torch import nn

import steplr_tui
from steplr_tui.run.tracker import Tracker


def new_optimizer():
    model = nn.Linear(784, 10)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    optimizer.step()  # no gradients: a no-op, so StepLR doesn't warn about the order
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)
    return model, optimizer, scheduler


IMPORT_CODE = """
import sys, time
t0 = time.perf_counter()
import steplr_tui
t1 = time.perf_counter()
import torch
t2 = time.perf_counter()
import steplr_tui.run.script_run
t3 = time.perf_counter()
ui = [m for m in ("textual", "textual_plotext", "plotext") if m in sys.modules]
print(t1 - t0, t2 - t1, t3 - t2, ",".join(ui) or "-")
"""


def import_ms(repeats: int) -> dict[str, float | str]:
    """Import times in milliseconds, each the median of `repeats` fresh interpreters."""
    import subprocess

    rows = []
    for _ in range(repeats):
        out = subprocess.run(
            [sys.executable, "-c", IMPORT_CODE], capture_output=True, text=True, check=True
        ).stdout.split()
        rows.append(out)
    column = lambda i: statistics.median(float(r[i]) for r in rows) * 1e3  # noqa: E731
    return {
        "import steplr_tui": column(0),
        "import torch": column(1),
        "steplr_tui.track's imports, after torch": column(2),
        "UI modules loaded": rows[-1][3],
    }


def per_call_us(fn, values, repeats: int) -> float:
    """Median over `repeats` of the time per element of `fn(values)`, in microseconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(values)
        times.append((time.perf_counter() - start) / len(values))
    return statistics.median(times) * 1e6


def bare(values) -> None:
    def sink(_value):
        return None

    for value in values:
        sink(value)


def batch_costs(calls: int, repeats: int, runs_dir: Path) -> dict[str, float]:
    _model, optimizer, scheduler = new_optimizer()
    floats = [0.5 + i * 1e-7 for i in range(calls)]
    tensors = [torch.tensor(v) for v in floats]
    leaf = torch.tensor(0.5, requires_grad=True)
    graded = [leaf * 1.0 for _ in range(calls)]  # each a 0-dim tensor that requires grad
    out: dict[str, float] = {}
    with steplr_tui.track(optimizer, scheduler, runs_dir=runs_dir, epochs=None) as run:

        def log_all(values) -> None:
            log = run.log_batch
            for value in values:
                log(value)

        def stop_checks(values) -> None:
            check = run.should_stop
            for _ in values:
                check()

        out["bare loop"] = per_call_us(bare, floats, repeats)
        out["log_batch(float)"] = per_call_us(log_all, floats, repeats) - out["bare loop"]
        out["log_batch(0-dim tensor)"] = per_call_us(log_all, tensors, repeats) - out["bare loop"]
        out["log_batch(tensor requiring grad)"] = (
            per_call_us(log_all, graded, repeats) - out["bare loop"]
        )
        out["should_stop()"] = per_call_us(stop_checks, floats, repeats) - out["bare loop"]
        scheduler.step()
        run.end_epoch()
    return out


def end_epoch_ms(epochs: int, runs_dir: Path | None, fsync: bool) -> dict[str, float]:
    _model, optimizer, scheduler = new_optimizer()
    times = []

    def loop(log_batch, end_epoch) -> None:
        for _ in range(epochs):
            log_batch(0.5)
            scheduler.step()
            start = time.perf_counter()
            end_epoch()
            times.append(time.perf_counter() - start)

    with mock.patch("os.fsync", lambda _fd: None) if not fsync else contextlib.nullcontext():
        if runs_dir is None:
            tracker = Tracker(optimizer, scheduler, emit=None)
            loop(tracker.log_batch, lambda: tracker.end_epoch({"test_acc": 90.0}))
        else:
            with steplr_tui.track(optimizer, scheduler, runs_dir=runs_dir) as run:
                loop(run.log_batch, lambda: run.end_epoch(test_acc=90.0))
    times.sort()
    return {
        "median_ms": statistics.median(times) * 1e3,
        "p90_ms": times[int(0.9 * (len(times) - 1))] * 1e3,
        "max_ms": times[-1] * 1e3,
    }


def reference_step_us(repeats: int) -> float:
    torch.manual_seed(0)
    model = nn.Linear(784, 10)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    x, y = torch.rand(64, 784), torch.randint(0, 10, (64,))

    def steps(items) -> None:
        for _ in items:
            loss = loss_fn(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    steps(range(50))  # warm up
    return per_call_us(steps, range(2000), repeats)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200_000, help="log_batch calls per repeat")
    parser.add_argument("--epochs", type=int, default=200, help="end_epoch calls per variant")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path, default=None)
    ns = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        runs = Path(tmp)
        per_batch = batch_costs(ns.calls, ns.repeats, runs / "batches")
        per_epoch = {
            "end_epoch (record, fsync)": end_epoch_ms(ns.epochs, runs / "a", fsync=True),
            "end_epoch (record, no fsync)": end_epoch_ms(ns.epochs, runs / "b", fsync=False),
            "end_epoch (no record)": end_epoch_ms(ns.epochs, None, fsync=True),
        }
    step = reference_step_us(ns.repeats)
    imports = import_ms(ns.repeats)
    per_batch_total = per_batch["log_batch(0-dim tensor)"] + per_batch["should_stop()"]

    rows = [("per batch", "us a call")]
    rows += [(name, f"{value:.3f}") for name, value in per_batch.items()]
    rows += [("reference step (Linear+Adam, b64)", f"{step:.1f}")]
    rows += [("log_batch+should_stop / step", f"{100 * per_batch_total / step:.2f}%")]
    rows += [("", ""), ("per epoch", "ms: median / p90 / max")]
    rows += [
        (name, f"{v['median_ms']:.3f} / {v['p90_ms']:.3f} / {v['max_ms']:.3f}")
        for name, v in per_epoch.items()
    ]
    rows += [("", ""), ("imports", "ms")]
    rows += [(k, v if isinstance(v, str) else f"{v:.1f}") for k, v in imports.items()]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name.ljust(width)}  {value}".rstrip())

    stamp = time.strftime("%Y-%m-%d")
    out = ns.json or ROOT / "benchmarks" / "results" / f"tracking-cost-{stamp}.json"
    write_results(
        out,
        " ".join(["tracking_cost.py", *(argv if argv is not None else sys.argv[1:])]),
        {
            "per_batch_us": per_batch,
            "reference_step_us": step,
            "per_batch_overhead_of_step": per_batch_total / step,
            "per_epoch_ms": per_epoch,
            "import_ms": imports,
            "calls": ns.calls,
            "epochs": ns.epochs,
            "repeats": ns.repeats,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
