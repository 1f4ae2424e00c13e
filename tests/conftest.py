"""Shared fixtures: where full MNIST is (skip when absent), and quiet app construction."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


@pytest.fixture
def mnist_root() -> Path:
    """Full MNIST, found through STEPLR_TUI_DATA (.ci/run points it at ../shared/data)."""
    value = os.environ.get("STEPLR_TUI_DATA")
    if not value:
        pytest.skip("full MNIST not configured: set STEPLR_TUI_DATA to a folder with MNIST/raw/")
    root = Path(value)
    missing = [f for f in MNIST_FILES if not (root / "MNIST" / "raw" / f).is_file()]
    if missing:
        pytest.skip(f"full MNIST not found in {root}/MNIST/raw (missing {', '.join(missing)})")
    return root


@pytest.fixture(autouse=True)
def _private_runs_dir(tmp_path_factory, monkeypatch) -> None:
    """Runs a test records go to a temporary folder, never the user's own runs folder
    (tests that need a particular folder set their own)."""
    monkeypatch.setenv("STEPLR_TUI_RUNS", str(tmp_path_factory.mktemp("runs")))
