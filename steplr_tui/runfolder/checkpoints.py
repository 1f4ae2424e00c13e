"""Kept checkpoints: the epochs a run can be branched from, readable without torch.

A run saves its latest state to `checkpoint.pt` after every epoch (resume reads
it). Besides it, `checkpoints/` holds hard links to the states worth keeping:

- `epoch-NNNN.pt`: a kept checkpoint, at every boundary where the run's lr
  changed (a decay or a live edit of lr) and at the epochs the user asked for
  (`--keep-checkpoints all`, or a list such as `2,5`);
- `latest-NNNN.pt`: the latest state again, so its epoch can be read from its name.

A link costs no space while `checkpoint.pt` is the same file; once the next
epoch replaces `checkpoint.pt`, a kept link holds the old state on its own (one
checkpoint's size), and the previous `latest-` link is removed. Which epochs can
be branched from is the list of names in `checkpoints/`: viewers read it with
no torch. Plain Python.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

KEPT_DIR = "checkpoints"
_NAME = re.compile(r"(epoch|latest)-(\d{4,})\.pt")
MAX_EPOCH = 1000  # the epochs field's own limit


class KeepError(ValueError):
    """A --keep-checkpoints value that is not 'all' or a list of epochs; says which."""


@dataclass(frozen=True)
class KeepPolicy:
    """Which checkpoints a run keeps besides the latest: always those where its lr
    changes, plus every epoch (`all`) or the listed `epochs`."""

    all: bool = False
    epochs: frozenset[int] = frozenset()

    def keeps(self, epoch: int, lr_changed: bool) -> bool:
        return lr_changed or self.all or epoch in self.epochs

    def as_json(self) -> str | list[int]:
        return "all" if self.all else sorted(self.epochs)

    def describe(self) -> str:
        if self.all:
            return "every epoch"
        extra = ", ".join(str(e) for e in sorted(self.epochs))
        return "where the lr changes" + (f", and after epochs {extra}" if extra else "")

    @classmethod
    def parse(cls, text: str) -> KeepPolicy:
        """'all', or epochs separated by commas ('2,5'); raise KeepError naming the rule."""
        raw = text.strip().lower()
        if raw == "all":
            return cls(all=True)
        epochs = set()
        for part in raw.split(","):
            part = part.strip()
            if not part.isascii() or not part.isdigit() or not 1 <= int(part) <= MAX_EPOCH:
                shown = text if len(text) <= 30 else text[:30] + "…"
                raise KeepError(
                    f"--keep-checkpoints must be 'all' or epochs from 1 to {MAX_EPOCH} "
                    f"separated by commas, such as 2,5 (got {shown!r})"
                )
            epochs.add(int(part))
        return cls(epochs=frozenset(epochs))

    @classmethod
    def from_json(cls, value: Any) -> KeepPolicy:
        """From config.json's `keep_checkpoints`; anything malformed is the default."""
        if value == "all":
            return cls(all=True)
        if isinstance(value, list):
            return cls(
                epochs=frozenset(
                    v for v in value if isinstance(v, int) and not isinstance(v, bool) and v > 0
                )
            )
        return cls()


def kept_checkpoints(folder: Path) -> dict[int, Path]:
    """Every epoch a checkpoint is kept for in the run folder, with its file, in order."""
    found: dict[int, Path] = {}
    try:
        entries = list((folder / KEPT_DIR).iterdir())
    except OSError:
        return {}
    for entry in sorted(entries, key=lambda p: p.name):
        match = _NAME.fullmatch(entry.name)
        if match and entry.is_file():
            # A kept name wins over the latest one for the same epoch (same file anyway).
            found.setdefault(int(match.group(2)), entry)
    return dict(sorted(found.items()))


def branchable_epochs(folder: Path) -> list[int]:
    return list(kept_checkpoints(folder))


def keep_checkpoint(checkpoint: Path, epoch: int, keep: bool) -> None:
    """Name the state `checkpoint` holds (after `epoch`) in `checkpoints/`: as kept, and
    as the latest; remove the older latest names. A hard link where the file system
    has them, else a copy."""
    folder = checkpoint.parent / KEPT_DIR
    folder.mkdir(exist_ok=True)
    names = [f"latest-{epoch:04d}.pt"] + ([f"epoch-{epoch:04d}.pt"] if keep else [])
    for name in names:
        _link(checkpoint, folder / name)
    for old in folder.glob("latest-*.pt"):
        if old.name != names[0]:
            with contextlib.suppress(OSError):
                old.unlink()


def _link(source: Path, target: Path) -> None:
    tmp = target.with_name(f".{target.name}.tmp")
    with contextlib.suppress(OSError):
        tmp.unlink()
    try:
        os.link(source, tmp)
    except OSError:
        shutil.copyfile(source, tmp)
    os.replace(tmp, target)
