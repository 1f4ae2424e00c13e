"""The classic PyTorch MNIST StepLR example, as the baseline steplr-tui is measured against.

torchvision MNIST with `transforms.ToTensor`, `DataLoader(batch_size=64,
shuffle=True)`, `nn.Linear(784, 10)`, Adam lr=1e-3, `StepLR(step_size=2,
gamma=0.1)` stepped once per epoch, test accuracy on a DataLoader of 1000-image
batches. Usage: python benchmarks/reference.py DATA_ROOT [EPOCHS]
"""

from __future__ import annotations

import sys
import time

import torch
from torch import nn
from torch.utils.data import DataLoader
from torchvision import datasets, transforms


def run(root: str, epochs: int = 5, seed: int = 0, device: str = "cpu") -> list[dict[str, float]]:
    torch.manual_seed(seed)
    tf = transforms.ToTensor()
    train = datasets.MNIST(root, train=True, download=False, transform=tf)
    test = datasets.MNIST(root, train=False, download=False, transform=tf)
    train_loader = DataLoader(train, batch_size=64, shuffle=True)
    test_loader = DataLoader(test, batch_size=1000, shuffle=False)
    model = nn.Linear(784, 10).to(device)
    loss_fn = nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.1)
    results = []
    for epoch in range(1, epochs + 1):
        lr = optimizer.param_groups[0]["lr"]
        model.train()
        t0 = time.perf_counter()
        total = 0.0
        for x, y in train_loader:
            x, y = x.to(device), y.to(device)
            loss = loss_fn(model(x.view(x.size(0), -1)), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item()
        train_s = time.perf_counter() - t0
        scheduler.step()
        model.eval()
        t1 = time.perf_counter()
        correct = 0
        with torch.no_grad():
            for x, y in test_loader:
                x, y = x.to(device), y.to(device)
                correct += (model(x.view(x.size(0), -1)).argmax(1) == y).sum().item()
        eval_s = time.perf_counter() - t1
        acc = 100.0 * correct / len(test)
        print(f"Epoch {epoch}, Loss: {total / len(train_loader):.4f}, LR: {lr:.6f}")
        print(f"Test Accuracy: {acc:.2f}%")
        results.append({"train_s": train_s, "eval_s": eval_s, "acc": acc})
    return results


if __name__ == "__main__":
    run(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 5)
