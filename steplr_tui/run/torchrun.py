"""Whether this process is a torchrun worker, told without importing torch."""

from __future__ import annotations

import os

# Environment variables torchrun sets for every worker.
TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


def launched_by_torchrun() -> bool:
    return all(v in os.environ for v in TORCHRUN_VARS)
