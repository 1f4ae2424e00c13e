"""torch.distributed for steplr-tui: which rank this is, and the few decisions rank 0
shares with every rank (a stop, the edit to apply at a boundary, a loss sum).

Every helper here is a collective: all ranks must call it at the same point, or
the job hangs. The tracker calls them on step counts and epoch boundaries, which
are the same on every rank, never on a clock. They go over a gloo group, so a
decision costs a small CPU message and never synchronises a GPU (with NCCL, a
second, gloo group is made for them).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from steplr_tui.run.torchrun import launched_by_torchrun


@dataclass
class DistContext:
    """This process's place in a torch.distributed job."""

    rank: int
    world_size: int
    backend: str
    local_rank: int = 0
    group: Any = None  # the gloo group the decisions travel over (None: the default one)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def current(cls) -> DistContext | None:
        """The initialised process group, if there is one with more than one rank."""
        if not (dist.is_available() and dist.is_initialized()):
            return None
        world = dist.get_world_size()
        if world < 2:
            return None
        backend = str(dist.get_backend())
        group = None if backend == "gloo" else dist.new_group(backend="gloo")
        local = int(os.environ.get("LOCAL_RANK", dist.get_rank()))
        return cls(dist.get_rank(), world, backend, local, group)

    def max(self, value: int) -> int:
        """The largest of every rank's value (a stop code: 0 means go on)."""
        t = torch.tensor([value], dtype=torch.int64)
        dist.all_reduce(t, op=dist.ReduceOp.MAX, group=self.group)
        return int(t.item())

    def sum(self, values: list[float]) -> list[float]:
        t = torch.tensor(values, dtype=torch.float64)
        dist.all_reduce(t, op=dist.ReduceOp.SUM, group=self.group)
        return t.tolist()

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's `obj` on every rank."""
        box = [obj]
        dist.broadcast_object_list(box, src=0, group=self.group)
        return box[0]


def init_from_env(device_choice: str) -> tuple[DistContext | None, str]:
    """Under torchrun, join the job: NCCL on GPUs, gloo on the CPU. Returns the context
    (None for a single process) and the device this rank should use."""
    if not launched_by_torchrun() or int(os.environ["WORLD_SIZE"]) < 2:
        return None, device_choice
    local = int(os.environ["LOCAL_RANK"])
    use_cuda = device_choice == "cuda" or (device_choice == "auto" and torch.cuda.is_available())
    if use_cuda:
        torch.cuda.set_device(local)
        device = f"cuda:{local}"
    else:
        device = "cpu"
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return DistContext.current(), device


def shutdown(together: bool = False) -> None:
    """Leave the process group. `together` (every rank ended its run as it should):
    meet at a barrier first, so no rank tears gloo down while a peer's last message is
    in flight (a rank then aborted: "terminate called without an active exception")."""
    if dist.is_available() and dist.is_initialized():
        if together:
            dist.barrier()
        dist.destroy_process_group()
