"""A user's own DDP script, for tests/test_ddp.py to launch with torchrun.

A small MLP on synthetic digits, DistributedDataParallel over gloo on the CPU,
a DistributedSampler, SGD and StepLR, watched with `steplr_tui.track`. Each rank
writes what it saw to `<facts dir>/rank<R>.jsonl` (never into the run folder,
which rank 0 alone writes): a checksum of its parameters and its lrs after
every epoch, the batch at which it was told to stop, its run folder (None off
rank 0) and how the run ended.

`--pause EPOCH:STEP` (repeatable) makes every rank wait before that batch, after
writing `<facts>/paused-E-S-rank<R>`, until `<facts>/go-E-S` exists: the test then
sends its request while nothing trains, so the step it lands at is known.

Usage: torchrun --nproc-per-node 2 tests/ddp_script.py FACTS_DIR [--epochs N]
       [--steps N] [--batch-size B] [--pause E:S ...]   (or FACTS_DIR in $STEPLR_DDP_FACTS)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.data.distributed import DistributedSampler

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import steplr_tui
from tests.synthetic import synthetic_data

PAUSE_LIMIT_S = 120.0  # a test that never says go has failed; don't wait forever


def checksum(model: nn.Module) -> str:
    """The exact bytes of every parameter: equal on two ranks only if bit for bit equal."""
    digest = hashlib.sha256()
    for p in model.parameters():
        digest.update(p.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("facts", nargs="?", default=os.environ.get("STEPLR_DDP_FACTS"))
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--steps", type=int, default=24, help="batches per epoch on each rank")
    parser.add_argument("--batch-size", type=int, default=32, help="per rank")
    parser.add_argument("--pause", action="append", default=[], metavar="EPOCH:STEP")
    ns = parser.parse_args()
    if not ns.facts:
        parser.error("give the facts folder (argument or $STEPLR_DDP_FACTS)")
    facts = Path(ns.facts)
    pauses = {tuple(int(v) for v in p.split(":")) for p in ns.pause}

    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.set_num_threads(1)
    out = open(facts / f"rank{rank}.jsonl", "a", encoding="utf-8")  # noqa: SIM115

    def note(**fact) -> None:
        out.write(json.dumps(fact) + "\n")
        out.flush()

    data = synthetic_data(n_train=ns.steps * ns.batch_size * world, n_test=128)
    train_set = TensorDataset(data.train_x.float().div(255.0).flatten(1), data.train_y)
    sampler = DistributedSampler(train_set, num_replicas=world, rank=rank, shuffle=True, seed=0)
    loader = DataLoader(train_set, batch_size=ns.batch_size, sampler=sampler)
    test_x, test_y = data.test_x.float().div(255.0).flatten(1), data.test_y

    torch.manual_seed(0)  # the same initial weights on every rank (DDP broadcasts them anyway)
    model = nn.Sequential(nn.Linear(28 * 28, 32), nn.ReLU(), nn.Linear(32, 10))
    ddp = DistributedDataParallel(model)
    optimizer = torch.optim.SGD(ddp.parameters(), lr=0.05, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)
    loss_fn = nn.CrossEntropyLoss()

    with steplr_tui.track(
        optimizer,
        scheduler,
        config={"model": "mlp 784-32-10", "dataset": "synthetic"},
        epochs=ns.epochs,
        steps_per_epoch=len(loader),
        batch_size=ns.batch_size,
    ) as run:
        note(event="start", rank=rank, world=world, pid=os.getpid(), path=_text(run.path))
        for epoch in range(run.epoch, ns.epochs + 1):
            sampler.set_epoch(epoch)
            ddp.train()
            lr_used = [g["lr"] for g in optimizer.param_groups]
            for step, (x, y) in enumerate(loader, start=1):
                if (epoch, step) in pauses:
                    _pause(facts, epoch, step, rank)
                if run.should_stop():
                    note(event="stopped", epoch=epoch, batch=step)
                    break
                loss = loss_fn(ddp(x), y)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                run.log_batch(loss)
            scheduler.step()
            with torch.no_grad():
                acc = 100.0 * (model(test_x).argmax(1) == test_y).float().mean().item()
            edit = run.end_epoch(test_acc=acc)
            note(
                event="epoch",
                epoch=epoch,
                lr=lr_used[0],
                checksum=checksum(model),
                edit=edit.as_dict() if edit else None,
                next_lr=optimizer.param_groups[0]["lr"],
                step_size=scheduler.step_size,
                gamma=scheduler.gamma,
            )
    note(event="end", stopped=run.stopped, checksum=checksum(model))
    out.close()
    dist.barrier()  # every rank done with its messages before any tears gloo down
    dist.destroy_process_group()
    return 0


def _pause(facts: Path, epoch: int, step: int, rank: int) -> None:
    (facts / f"paused-{epoch}-{step}-rank{rank}").touch()
    go = facts / f"go-{epoch}-{step}"
    deadline = time.monotonic() + PAUSE_LIMIT_S
    while not go.exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"rank {rank}: nobody created {go} within {PAUSE_LIMIT_S:.0f} s")
        time.sleep(0.01)


def _text(path: Path | None) -> str | None:
    return str(path) if path is not None else None


if __name__ == "__main__":
    sys.exit(main())
