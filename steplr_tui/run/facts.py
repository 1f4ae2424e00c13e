"""What config.json records of a run besides its parameters: the versions it ran with and
how it was distributed. The built-in trainer's jobs and a user's own script record them
alike."""

from __future__ import annotations

import platform
from typing import Any


def versions() -> dict[str, str]:
    """steplr-tui's, torch's and Python's versions (imports torch)."""
    import torch

    from steplr_tui import __version__

    return {
        "steplr_tui": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


def distributed_facts(world_size: int, backend: str, batch_size: Any) -> dict[str, Any]:
    """The processes a run trained in: their number, their backend ('' for one process),
    and the batch each takes (None when the run's loop did not say) and all of them."""
    per_rank = (
        batch_size if isinstance(batch_size, int) and not isinstance(batch_size, bool) else None
    )
    return {
        "world_size": world_size,
        "backend": backend,
        "batch_size_per_rank": per_rank,
        "global_batch_size": per_rank * world_size if per_rank else None,
    }
