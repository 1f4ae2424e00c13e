"""A LightningModule with StepLR, recorded by steplr_tui.lightning.SteplrCallback, for
tests/test_lightning.py to run in one process or under Lightning's DDP strategy.

Each rank writes what it saw to `<facts>/rank<R>.jsonl`: the lr, step_size and gamma
at the start of every epoch, a checksum of its parameters at every epoch's end, and
how fit() ended. `--pause EPOCH:BATCH` (1-based, repeatable) makes every rank wait
before that batch, after writing `<facts>/paused-E-B-rank<R>`, until
`<facts>/go-E-B` exists, so the test knows where a request lands.

Usage: python tests/lightning_script.py FACTS [--epochs N] [--devices N] [--pause E:B ...]
       [--ckpt-dir DIR] [--resume CKPT]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path

import lightning.pytorch as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from steplr_tui.lightning import SteplrCallback

PAUSE_LIMIT_S = 120.0


class Classifier(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4))

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = nn.functional.cross_entropy(self.net(x), y)
        self.log("train_loss", loss)  # recorded by the run itself: the callback skips it
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        logits = self.net(x)
        self.log("val_loss", nn.functional.cross_entropy(logits, y), sync_dist=True)
        self.log("val_acc", (logits.argmax(1) == y).float().mean() * 100, sync_dist=True)

    def configure_optimizers(self):
        optimizer = torch.optim.SGD(self.parameters(), lr=0.1, momentum=0.9)
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)
        return {"optimizer": optimizer, "lr_scheduler": scheduler}


class Facts(pl.Callback):
    def __init__(self, facts: Path, pauses: set[tuple[int, int]]) -> None:
        self.facts, self.pauses = facts, pauses

    def note(self, trainer, **fact) -> None:
        with open(self.facts / f"rank{trainer.global_rank}.jsonl", "a") as fh:
            fh.write(json.dumps(fact) + "\n")

    def on_train_epoch_start(self, trainer, pl_module):
        group = trainer.optimizers[0].param_groups[0]
        scheduler = trainer.lr_scheduler_configs[0].scheduler
        self.note(
            trainer,
            event="epoch_start",
            epoch=trainer.current_epoch + 1,
            lr=group["lr"],
            step_size=scheduler.step_size,
            gamma=scheduler.gamma,
        )

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        where = (trainer.current_epoch + 1, batch_idx + 1)
        if where in self.pauses:
            (self.facts / f"paused-{where[0]}-{where[1]}-rank{trainer.global_rank}").touch()
            go = self.facts / f"go-{where[0]}-{where[1]}"
            deadline = time.monotonic() + PAUSE_LIMIT_S
            while not go.exists():
                if time.monotonic() > deadline:
                    raise SystemExit(f"nobody created {go}")
                time.sleep(0.01)

    def on_train_epoch_end(self, trainer, pl_module):
        digest = hashlib.sha256()
        for p in pl_module.parameters():
            digest.update(p.detach().contiguous().numpy().tobytes())
        self.note(
            trainer, event="epoch_end", epoch=trainer.current_epoch + 1, checksum=digest.hexdigest()
        )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("facts")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--devices", type=int, default=1)
    parser.add_argument("--batches", type=int, default=12, help="per rank and epoch")
    parser.add_argument("--pause", action="append", default=[], metavar="EPOCH:BATCH")
    parser.add_argument("--ckpt-dir")
    parser.add_argument("--resume")
    ns = parser.parse_args()
    facts = Path(ns.facts)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    n = ns.batches * 16 * ns.devices
    x = torch.randn(n, 16)
    y = (x[:, :4].argmax(1)).long()
    train = DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True)
    val = DataLoader(TensorDataset(x[:64], y[:64]), batch_size=64)
    callbacks = [
        SteplrCallback(config={"dataset": "synthetic"}),
        Facts(facts, {tuple(int(v) for v in p.split(":")) for p in ns.pause}),
    ]
    if ns.ckpt_dir:
        from lightning.pytorch.callbacks import ModelCheckpoint

        callbacks.append(ModelCheckpoint(dirpath=ns.ckpt_dir, save_top_k=-1))
    trainer = pl.Trainer(
        max_epochs=ns.epochs,
        accelerator="cpu",
        devices=ns.devices,
        strategy="ddp" if ns.devices > 1 else "auto",
        callbacks=callbacks,
        logger=False,
        enable_checkpointing=bool(ns.ckpt_dir),
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        default_root_dir=str(facts),
    )
    trainer.fit(Classifier(), train, val, ckpt_path=ns.resume)
    with open(facts / f"rank{trainer.global_rank}.jsonl", "a") as fh:
        fh.write(json.dumps({"event": "end", "path": callbacks[0].path, "pid": os.getpid()}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
