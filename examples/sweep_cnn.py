"""Your own training script as the trials of a sweep: the CNN of train_cnn.py, with its lr,
step_size and gamma asked of the sweep's study, and each epoch's test accuracy reported
to it (its pruner may stop a poor trial after an epoch: PRUNED).

Let steplr-tui run the trials, K at a time, each a detached process:

    steplr-tui sweep --script examples/sweep_cnn.py --lr 1e-4:1e-2:log --gamma 0.1:0.9 \\
        --step-size 1,2,3 --epochs 4 --trials 8 --parallel 2 -- --data-dir ~/data

or, once that sweep exists, run more trials of it by hand, on this box or another
(with the study's --storage URL):

    python examples/sweep_cnn.py --sweep NAME --data-dir ~/data

`--train-limit N` trains on the first N images (a quick try).
"""

from __future__ import annotations

import argparse
import os
import sys

import torch
from torch import nn
from torch.optim.lr_scheduler import StepLR
from torch.utils.data import DataLoader, Subset

import steplr_tui

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train_cnn import Net, evaluate, load_mnist


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sweep", help="the sweep to join (not needed under steplr-tui sweep)")
    p.add_argument("--storage", help="the study's storage URL (a sweep of another box)")
    p.add_argument("--data-dir", default=os.environ.get("STEPLR_TUI_DATA", "data"))
    p.add_argument("--download", action="store_true")
    p.add_argument("--train-limit", type=int, default=0)
    args = p.parse_args(argv)

    trial = steplr_tui.join_sweep(args.sweep, storage=args.storage)
    epochs = int(trial.config.get("epochs", 4))
    batch = int(trial.config.get("batch_size", 64))
    print(f"trial {trial.number} of {trial.sweep}: {trial.params}")

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    train_set, test_set = load_mnist(args.data_dir, args.download)
    if args.train_limit:
        train_set = Subset(train_set, range(min(args.train_limit, len(train_set))))
    train_loader = DataLoader(train_set, batch_size=batch, shuffle=True)
    test_loader = DataLoader(test_set, batch_size=1000)

    torch.manual_seed(int(trial.config.get("seed", 0)))
    model = Net().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=trial.params["lr"])
    scheduler = StepLR(optimizer, trial.params["step_size"], gamma=trial.params["gamma"])
    config = {"model": "lenet", "dataset": "MNIST", "n_train": len(train_set)}
    with steplr_tui.track(
        optimizer,
        scheduler,
        config=config,
        epochs=epochs,
        steps_per_epoch=len(train_loader),
        batch_size=batch,
        trial=trial,  # each end_epoch reports test_acc to the study; it may prune the run
    ) as run:
        for _epoch in range(run.epoch, epochs + 1):
            model.train()
            for x, y in train_loader:
                if run.should_stop():  # a stop, or the pruner after the last epoch
                    break
                x, y = x.to(device), y.to(device)
                loss = nn.functional.cross_entropy(model(x), y)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                run.log_batch(loss)
            scheduler.step()
            acc, val_loss = evaluate(model, test_loader, device)
            run.end_epoch(test_acc=acc, val_loss=val_loss)
    print("pruned" if run.stopped else f"done: test accuracy {acc:.2f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
