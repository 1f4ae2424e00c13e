"""Full MNIST, the reference workload: skipped where STEPLR_TUI_DATA does not point at MNIST."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

EPOCH_LINE = re.compile(r"^Epoch 1, Loss: (\d+\.\d{4}), LR: 0\.001000$")
ACC_LINE = re.compile(r"^Test Accuracy: (\d+\.\d{2})%$")


def test_one_reference_epoch_headless(mnist_root: Path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "steplr_tui",
            "--headless",
            "--dataset",
            "mnist",
            "--no-download",
            "--epochs",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "STEPLR_TUI_DATA": str(mnist_root)},
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2, result.stdout
    loss = float(EPOCH_LINE.match(lines[0]).group(1))
    accuracy = float(ACC_LINE.match(lines[1]).group(1))
    assert 0.3 < loss < 0.8
    assert accuracy >= 90.0
    assert "MNIST (60,000 train / 10,000 test)" in result.stderr
