"""The scheduler cases the tests of any-scheduler support share: a user's loop over a
tiny model, the schedulers to watch, and a live edit as the shell sends it."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.optim import lr_scheduler as S

from steplr_tui.runfolder import (
    CONTROL_FILE,
    EditRequest,
    append_line,
    encode_request,
    new_request_id,
)
from steplr_tui.runfolder.schedule import ScheduleEdit

STEPS = 4  # batches an epoch
EPOCHS = 6


def model_and_optimizer(lr: float = 0.1, groups: int = 2, kind=torch.optim.SGD, **kw):
    torch.manual_seed(0)
    model = nn.Linear(4, 2)
    params = (
        [{"params": [model.weight]}, {"params": [model.bias], "lr": lr * 3}]
        if groups == 2
        else model.parameters()
    )
    return model, kind(params, lr=lr, **kw)


SCHEDULERS = {
    "StepLR": lambda o: S.StepLR(o, step_size=2, gamma=0.5),
    "MultiStepLR": lambda o: S.MultiStepLR(o, milestones=[2, 4], gamma=0.3),
    "ExponentialLR": lambda o: S.ExponentialLR(o, gamma=0.7),
    "Linear->StepLR": lambda o: S.SequentialLR(
        o, [S.LinearLR(o, start_factor=0.1, total_iters=2), S.StepLR(o, 2, 0.5)], [2]
    ),
    "Constant->MultiStepLR": lambda o: S.SequentialLR(
        o, [S.ConstantLR(o, factor=0.25, total_iters=2), S.MultiStepLR(o, [2, 3], 0.1)], [2]
    ),
    "Linear->ExponentialLR": lambda o: S.SequentialLR(
        o, [S.LinearLR(o, start_factor=0.2, total_iters=3), S.ExponentialLR(o, 0.9)], [3]
    ),
    "CosineAnnealingLR": lambda o: S.CosineAnnealingLR(o, T_max=EPOCHS, eta_min=1e-4),
    "LambdaLR": lambda o: S.LambdaLR(o, lambda e: 1.0 / (1 + e)),
    "OneCycleLR": lambda o: S.OneCycleLR(o, max_lr=[0.5, 0.9], total_steps=EPOCHS * STEPS),
}


def train(
    run, model, optimizer, scheduler, epochs=EPOCHS, per_batch=False, plateau=None, check=True
):
    """A user's loop; the lrs of every group at every batch, as the optimizer used them.
    `check`: it asks should_stop() before each batch (requests are read mid-epoch)."""
    used: list[list[float]] = []
    gen = torch.Generator().manual_seed(1)
    for epoch in range(run.epoch, epochs + 1):
        for _ in range(STEPS):
            if check and run.should_stop():
                break
            x = torch.randn(8, 4, generator=gen)
            loss = model(x).pow(2).mean()
            optimizer.zero_grad()
            loss.backward()
            used.append([float(g["lr"]) for g in optimizer.param_groups])
            optimizer.step()
            if per_batch:
                scheduler.step()
            run.log_batch(loss)
        if plateau is not None:
            scheduler.step(plateau[epoch - 1])
        elif scheduler is not None and not per_batch:
            scheduler.step()
        run.end_epoch(test_acc=50.0)
    return used


def _edit(path: Path, **values) -> None:
    request = EditRequest(new_request_id(), ScheduleEdit(**values), "test")
    append_line(path / CONTROL_FILE, encode_request(request))
