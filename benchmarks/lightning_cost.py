"""What `steplr_tui.lightning.SteplrCallback` costs a Lightning loop, on the CPU.

A bare Lightning fit of a small model (Linear(784, 10), SGD, StepLR, batch 64, data
in memory, no logger, checkpoint, progress bar or validation) against the same fit
with the callback recording it into a run folder, alternating, `--repeats` times
each, and with an empty `Callback` (what Lightning itself charges for any callback:
every hook of every callback is called, under its profiler, at every batch). The
figure is the difference in the median time per batch, in microseconds, and its
share of the bare loop's batch.

Usage: python benchmarks/lightning_cost.py [--batches N] [--repeats N] [--json PATH]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import lightning.pytorch as pl
import torch
from harness import ROOT, write_results
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from steplr_tui.lightning import SteplrCallback


class Linear(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Linear(784, 10)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.cross_entropy(self.net(x), y)

    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.parameters(), lr=0.01)
        return {
            "optimizer": optimizer,
            "lr_scheduler": torch.optim.lr_scheduler.StepLR(optimizer, 2, 0.1),
        }


def fit_seconds_per_batch(loader: DataLoader, runs: Path | None, empty: bool = False) -> float:
    callbacks = [SteplrCallback(runs_dir=runs)] if runs is not None else []
    if empty:
        callbacks = [pl.Callback()]
    trainer = pl.Trainer(
        max_epochs=1,
        accelerator="cpu",
        callbacks=callbacks,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    start = time.perf_counter()
    trainer.fit(Linear(), loader)
    return (time.perf_counter() - start) / len(loader)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=6000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--json", type=Path, default=None)
    ns = parser.parse_args(argv)
    torch.manual_seed(0)
    x, y = torch.rand(ns.batches * 64, 784), torch.randint(0, 10, (ns.batches * 64,))
    loader = DataLoader(TensorDataset(x, y), batch_size=64)
    bare, tracked, empty = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        fit_seconds_per_batch(loader, None)  # warm-up: first-fit costs on neither side
        for k in range(ns.repeats):
            bare.append(fit_seconds_per_batch(loader, None))
            empty.append(fit_seconds_per_batch(loader, None, empty=True))
            tracked.append(fit_seconds_per_batch(loader, Path(tmp) / str(k)))
    # Medians of the differences within each round of three fits side by side: the
    # host's speed drifts between rounds more than the callback costs.
    b = statistics.median(bare) * 1e6
    t = b + statistics.median(x - y for x, y in zip(tracked, bare, strict=True)) * 1e6
    e = b + statistics.median(x - y for x, y in zip(empty, bare, strict=True)) * 1e6
    print(
        f"bare Lightning batch      {b:8.1f} us (runs {', '.join(f'{v * 1e6:.0f}' for v in bare)})"
    )
    runs = ", ".join(f"{v * 1e6:.0f}" for v in tracked)
    print(f"with SteplrCallback       {t:8.1f} us (runs {runs})")
    print(
        f"an empty Callback         {e:8.1f} us (runs {', '.join(f'{v * 1e6:.0f}' for v in empty)})"
    )
    print(f"callback per batch        {t - b:8.1f} us ({100 * (t - b) / b:.1f}% of the batch)")
    print(f"of which Lightning's own  {e - b:8.1f} us (any callback)")
    stamp = time.strftime("%Y-%m-%d")
    out = ns.json or ROOT / "benchmarks" / "results" / f"lightning-cost-{stamp}.json"
    write_results(
        out,
        " ".join(["lightning_cost.py", *(argv if argv is not None else sys.argv[1:])]),
        {
            "bare_us_per_batch": b,
            "callback_us_per_batch": t,
            "cost_us_per_batch": t - b,
            "cost_share": (t - b) / b,
            "empty_callback_us_per_batch": e,
            "batches": ns.batches,
            "repeats": ns.repeats,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
