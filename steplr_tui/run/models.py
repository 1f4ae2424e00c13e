"""The built-in trainer's models, all on flat 784-pixel images scaled to [0, 1].

- `linear`: the reference, `nn.Linear(784, 10)` (about 92% after 5 reference epochs);
- `mlp`: one hidden layer of 256 ReLU units;
- `cnn`: a small LeNet-style network (two 5x5 convolutions, max pooling, three
  fully connected layers), which gives a GPU something to do.
"""

from __future__ import annotations

from torch import nn

MODEL_DESCRIPTIONS = {
    "linear": "Linear(784, 10)",
    "mlp": "MLP 784-256-10",
    "cnn": "LeNet-style CNN",
}


class LeNet(nn.Module):
    """LeNet-5's shape with ReLU and max pooling, on images given as 784 floats."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(16 * 5 * 5, 120),
            nn.ReLU(),
            nn.Linear(120, 84),
            nn.ReLU(),
            nn.Linear(84, 10),
        )

    def forward(self, x):
        return self.classifier(self.features(x.view(-1, 1, 28, 28)))


def make_model(name: str) -> nn.Module:
    """A freshly initialised model (seed torch's generator first for repeatable weights)."""
    if name == "mlp":
        return nn.Sequential(nn.Linear(28 * 28, 256), nn.ReLU(), nn.Linear(256, 10))
    if name == "cnn":
        return LeNet()
    return nn.Linear(28 * 28, 10)
