"""The phase table: one row per LR phase of a run, to answer "did this decay help?".

A phase is a run of consecutive epochs at the same lr. Each row reports where the
phase left the loss and the test accuracy and how much it moved them since the
end of the phase before; the first phase, having none before it, reports its
change from its own first epoch. Plain Python, no Textual.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from steplr_tui.runfolder import EpochEnd


@dataclass(frozen=True)
class LrPhase:
    """Epochs `first..last` (1-based) trained at `lr`."""

    lr: float
    first: int
    last: int
    loss: float  # mean training loss of the phase's last epoch
    loss_change: float
    acc: float  # test accuracy after the phase's last epoch, in %
    acc_change: float
    seconds: float

    @property
    def epochs(self) -> str:
        return str(self.first) if self.first == self.last else f"{self.first}-{self.last}"


def phases(epochs: Sequence[EpochEnd]) -> list[LrPhase]:
    """Group epochs by lr, in order; an lr that comes back later starts a new phase."""
    groups: list[list[EpochEnd]] = []
    for epoch in epochs:
        if groups and groups[-1][-1].lr == epoch.lr:
            groups[-1].append(epoch)
        else:
            groups.append([epoch])
    rows: list[LrPhase] = []
    for i, group in enumerate(groups):
        before = groups[i - 1][-1] if i > 0 else group[0]
        end = group[-1]
        rows.append(
            LrPhase(
                lr=end.lr,
                first=group[0].epoch,
                last=end.epoch,
                loss=end.train_loss,
                loss_change=end.train_loss - before.train_loss,
                acc=end.test_acc,
                acc_change=end.test_acc - before.test_acc,
                seconds=sum(e.seconds for e in group),
            )
        )
    return rows
