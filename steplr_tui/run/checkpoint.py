"""Epoch checkpoints: model, optimizer, scheduler and RNG states, saved atomically.

Loading uses `torch.load(weights_only=True)` only, so a crafted pickle cannot
run code; anything that is not a checkpoint of this shape is refused with a
message, never half-loaded.
"""

from __future__ import annotations

import io
import pickle
import warnings
from pathlib import Path
from typing import Any

import torch

from steplr_tui.runfolder.files import write_atomic

FORMAT = 1


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, damaged or not ours; the message says what to do."""


def save_checkpoint(
    path: Path,
    *,
    epoch: int,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    shuffle: torch.Generator,
) -> None:
    """Write the state after `epoch` completed epochs (temporary file, fsync, rename)."""
    state = {
        "format": FORMAT,
        "epoch": epoch,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "rng": {"torch": torch.get_rng_state(), "shuffle": shuffle.get_state()},
    }
    buffer = io.BytesIO()
    torch.save(state, buffer)
    try:
        write_atomic(path, buffer.getvalue())
    except OSError as exc:  # a full disk: the old checkpoint is whole, and the run fails
        raise CheckpointError(
            f"cannot write the checkpoint {path} ({exc.strerror or exc}); the previous one "
            "is kept: free some disk space or choose another --runs-dir"
        ) from None


def load_checkpoint(path: Path, fix: str = "start a new run") -> dict[str, Any]:
    """Read and check a checkpoint; raise CheckpointError naming the file and the fix."""
    try:
        return _load(path)
    except CheckpointError as exc:
        if fix == "start a new run":
            raise
        raise CheckpointError(str(exc).replace("start a new run", fix)) from exc.__cause__


def _load(path: Path) -> dict[str, Any]:
    from steplr_tui.runfolder.files import read_file

    try:
        data = read_file(path)  # never through a link, only the run's user's file
    except FileNotFoundError:
        raise CheckpointError(
            f"{path} does not exist (the run stopped before finishing its first epoch, or "
            "the file was deleted or moved): there is nothing to resume; start a new run"
        ) from None
    except OSError as exc:
        raise CheckpointError(f"{path} was refused: {exc}") from None
    try:
        with warnings.catch_warnings():
            # torch warns about unusual pickle protocols before refusing them; the
            # refusal below is the message that matters.
            warnings.simplefilter("ignore")
            state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "weights only" in str(exc).lower() or "weights_only" in str(exc).lower():
            why = "it holds objects other than tensors and plain values, so it was not loaded"
        else:
            why = f"it is truncated or corrupt ({first[:120]})"
        raise CheckpointError(
            f"{path} was refused: {why}. Nothing from it was used; start a new run"
        ) from exc
    _check_shape(state, path)
    return state


def _check_shape(state: Any, path: Path) -> None:
    ok = (
        isinstance(state, dict)
        and state.get("format") == FORMAT
        and isinstance(state.get("epoch"), int)
        and state["epoch"] >= 1
        and all(isinstance(state.get(k), dict) for k in ("model", "optimizer", "scheduler", "rng"))
        and isinstance(state["rng"].get("torch"), torch.Tensor)
        and isinstance(state["rng"].get("shuffle"), torch.Tensor)
    )
    if not ok:
        raise CheckpointError(
            f"{path} was refused: it is not a steplr-tui checkpoint (format {FORMAT}); "
            "start a new run"
        )


def restore(
    state: dict[str, Any],
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    shuffle: torch.Generator,
) -> int:
    """Load states into freshly built objects; return the number of epochs already done.

    Order matters: the optimizer and StepLR are built first (StepLR's constructor
    takes an initial step that sets lr back to its start), then their states are
    loaded over them, so the lr is the one the run had reached.
    """
    try:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"]["torch"])
        shuffle.set_state(state["rng"]["shuffle"])
    except (RuntimeError, KeyError, ValueError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"the checkpoint does not fit this run's model or optimizer ({first[:120]}); "
            "start a new run"
        ) from exc
    return int(state["epoch"])
