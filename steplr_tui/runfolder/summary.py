"""`summary.json`: the run's own fold of its batch losses, so a viewer need not re-read them.

A 1,000-epoch run writes about a million batch losses into `events.jsonl`; folding
them again is most of what opening such a run costs. The run folds them as it
writes them (the same `LossFold` every viewer uses) and, at most every
`SUMMARY_INTERVAL_S` and when it ends, replaces `summary.json` with that fold and
the place in `events.jsonl` it stands for: `offset` (the bytes of complete lines
it covers) and `seq` (the last of those lines). A reader skips the progress lines
before `offset`, takes the fold, and reads everything else as usual.

It is a cache: a reader checks that the line ending at `offset` has that `seq`
and otherwise ignores the file, and the run writes it without fsync.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from steplr_tui.runfolder.codec import dumps
from steplr_tui.runfolder.files import SUMMARY_FILE
from steplr_tui.runfolder.losses import LossFold

SUMMARY_FORMAT = 1
SUMMARY_INTERVAL_S = 5.0


@dataclass
class Summary:
    """The run's loss fold after the events in `events.jsonl`'s first `offset` bytes."""

    offset: int
    seq: int
    losses: LossFold


def encode_summary(summary: Summary) -> bytes:
    body = {
        "format": SUMMARY_FORMAT,
        "offset": summary.offset,
        "seq": summary.seq,
        "losses": summary.losses.state(),
    }
    return (dumps(body) + "\n").encode()


def decode_summary(data: bytes) -> Summary:
    """Raises ValueError for anything that is not a summary of this format."""
    obj: Any = json.loads(data)
    if not isinstance(obj, dict) or obj.get("format") != SUMMARY_FORMAT:
        raise ValueError(f"not a summary of format {SUMMARY_FORMAT}")
    offset, seq = obj.get("offset"), obj.get("seq")
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in (offset, seq)):
        raise ValueError("a summary needs 'offset' and 'seq' as whole numbers")
    return Summary(offset, seq, LossFold.from_state(obj.get("losses")))


def read_summary(folder: Path) -> Summary | None:
    """The folder's summary, or None where there is none or it cannot be read."""
    try:
        from steplr_tui.runfolder.files import read_file

        return decode_summary(read_file(folder / SUMMARY_FILE))
    except (OSError, ValueError):
        return None
