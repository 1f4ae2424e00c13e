"""Your own training script, watched and steered with steplr-tui.

A small CNN on MNIST with Adam and StepLR: a plain PyTorch loop plus four calls
(`track`, `log_batch`, `should_stop`, `end_epoch`). The same file runs in one
process or under torchrun (DistributedDataParallel, gloo on CPUs, NCCL on GPUs):

    python examples/train_cnn.py --data-dir ~/data
    torchrun --nproc-per-node 2 examples/train_cnn.py --data-dir ~/data

Then, from any terminal: `steplr-tui attach` (the dashboard, with live edits),
`steplr-tui edit RUN --lr 0.0005`, `steplr-tui stop RUN`. A stopped run goes on
from its checkpoint with `--resume CHECKPOINT`; the edits applied live are in the
scheduler's state, so the resumed run keeps them.

`--data-dir` is a folder holding MNIST/raw/ (torchvision's layout); `--download`
fetches it there. `--train-limit N` trains on the first N images (a quick try).
"""

from __future__ import annotations

import argparse
import os
import sys

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.lr_scheduler import StepLR
from torch.utils.data import DataLoader, Subset
from torch.utils.data.distributed import DistributedSampler

import steplr_tui


class Net(nn.Module):
    """LeNet-style: two 5x5 convolutions with pooling, then two linear layers."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        )  # fmt: skip
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(16 * 5 * 5, 120), nn.ReLU(), nn.Linear(120, 10)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default=os.environ.get("STEPLR_TUI_DATA", "data"))
    p.add_argument("--download", action="store_true", help="fetch MNIST into --data-dir")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=64, help="per process, as in DDP")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--step-size", type=int, default=2)
    p.add_argument("--gamma", type=float, default=0.1)
    p.add_argument("--train-limit", type=int, default=0, help="train on the first N images")
    p.add_argument("--checkpoint", default="cnn-checkpoint.pt", help="saved after every epoch")
    p.add_argument("--resume", metavar="CHECKPOINT", help="go on from a saved checkpoint")
    p.add_argument("--runs-dir", help="where the run folder goes (else steplr-tui's default)")
    return p.parse_args(argv)


def load_mnist(root: str, download: bool):
    from torchvision import datasets, transforms

    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
    try:
        train = datasets.MNIST(root, train=True, download=download, transform=tf)
        test = datasets.MNIST(root, train=False, download=download, transform=tf)
    except RuntimeError as exc:  # torchvision: "Dataset not found. You can use download=True"
        raise SystemExit(
            f"MNIST not found in {root}/MNIST/raw: pass --download, or --data-dir"
        ) from exc
    return train, test


@torch.no_grad()
def evaluate(model: nn.Module, loader: DataLoader, device: torch.device) -> tuple[float, float]:
    model.eval()
    correct, loss_sum, seen = 0, 0.0, 0
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        out = model(x)
        loss_sum += nn.functional.cross_entropy(out, y, reduction="sum").item()
        correct += (out.argmax(1) == y).sum().item()
        seen += len(y)
    return 100.0 * correct / seen, loss_sum / seen


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1  # set by torchrun
    if distributed:
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        rank = dist.get_rank()
        local = int(os.environ.get("LOCAL_RANK", "0"))
        device = torch.device(f"cuda:{local}" if torch.cuda.is_available() else "cpu")
        if device.type == "cuda":
            torch.cuda.set_device(device)
    else:
        rank = 0
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

    train_set, test_set = load_mnist(args.data_dir, args.download and rank == 0)
    if args.train_limit:
        train_set = Subset(train_set, range(min(args.train_limit, len(train_set))))
    sampler = DistributedSampler(train_set, seed=0) if distributed else None
    train_loader = DataLoader(
        train_set, batch_size=args.batch_size, shuffle=sampler is None, sampler=sampler
    )
    test_loader = DataLoader(test_set, batch_size=1000)

    torch.manual_seed(0)
    net = Net().to(device)
    model = DistributedDataParallel(net) if distributed else net
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    scheduler = StepLR(optimizer, step_size=args.step_size, gamma=args.gamma)

    run_folder = None
    if args.resume:
        state = torch.load(args.resume, map_location=device, weights_only=True)
        net.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])  # holds the live edits, too
        run_folder = state["run_folder"]

    config = {"model": "lenet", "dataset": "MNIST", "n_train": len(train_set)}
    with steplr_tui.track(
        optimizer,
        scheduler,
        config=config,
        epochs=args.epochs,
        steps_per_epoch=len(train_loader),
        batch_size=args.batch_size,
        runs_dir=args.runs_dir,
        resume=run_folder,
    ) as run:
        if run.path is not None:
            print(f"recording to {run.path}; watch it with: steplr-tui attach {run.path.name}")
        for epoch in range(run.epoch, args.epochs + 1):
            if sampler is not None:
                sampler.set_epoch(epoch)
            model.train()
            for x, y in train_loader:
                if run.should_stop():  # the same batch on every rank
                    break
                x, y = x.to(device), y.to(device)
                loss = nn.functional.cross_entropy(model(x), y)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                run.log_batch(loss)  # a tensor: no host sync per batch
            if run.stopped:  # told to stop: skip the evaluation, the run ends STOPPED
                break
            scheduler.step()
            acc, val_loss = evaluate(net, test_loader, device)
            run.end_epoch(test_acc=acc, val_loss=val_loss)  # after a stop: leaves the block
            if rank == 0:  # one writer, as for the run folder
                torch.save(
                    {
                        "model": net.state_dict(),
                        "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict(),
                        "run_folder": str(run.path),
                    },
                    args.checkpoint,
                )
                print(f"epoch {epoch}: test accuracy {acc:.2f}%, val loss {val_loss:.4f}")
    if rank == 0:
        print("stopped: resume with --resume " + args.checkpoint if run.stopped else "done")
    if distributed:
        dist.barrier()  # every rank done with its messages before any tears gloo down
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
