"""Small learnable fake digits for tests: class k lights up row band k."""

from __future__ import annotations

import torch

from steplr_tui.run.datasets import TensorData


def synthetic_data(n_train: int = 512, n_test: int = 128, seed: int = 0) -> TensorData:
    """uint8 [N, 28, 28] images whose class shows as a bright band of rows, and labels."""
    gen = torch.Generator().manual_seed(seed)

    def make(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.randint(0, 10, (n,), generator=gen)
        x = torch.randint(0, 60, (n, 28, 28), generator=gen, dtype=torch.uint8)
        for k in range(10):
            rows = slice(2 + 2 * k, 4 + 2 * k)
            x[y == k, rows, :] = 200
        return x, y

    train_x, train_y = make(n_train)
    test_x, test_y = make(n_test)
    return TensorData(train_x, train_y, test_x, test_y, "synthetic", "<memory>")
