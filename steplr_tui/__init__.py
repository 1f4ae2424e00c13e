"""steplr-tui: set, preview and watch PyTorch's StepLR schedule while MNIST trains."""

__version__ = "0.1.0"
