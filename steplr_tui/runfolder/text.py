"""Numbers and decisions in words, as every viewer, the shell and the logs say them.

Plain Python: no torch, no Textual.
"""

from __future__ import annotations

from pathlib import Path

from steplr_tui.runfolder import Decision
from steplr_tui.runfolder.clean import clean_text

__all__ = ["clean_text"]  # re-exported: every text of a record shown in a terminal


def plural(count: int, noun: str) -> str:
    """'1 epoch', '3 epochs'."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def format_duration(seconds: float) -> str:
    """'0:07', '12:34', '1:02:03'."""
    seconds = max(round(seconds), 0)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}:{minutes:02d}:{secs:02d}"
    return f"{minutes}:{secs:02d}"


def progress_bar(fraction: float, width: int = 10) -> str:
    """A text bar with eighth-block resolution."""
    fraction = min(max(fraction, 0.0), 1.0)
    eighths = round(fraction * width * 8)
    full, part = divmod(eighths, 8)
    partial = " ▏▎▍▌▋▊▉"[part] if full < width else ""
    return ("█" * full + partial).ljust(width)


def format_rate(samples_per_s: float) -> str:
    if samples_per_s >= 1e6:
        return f"{samples_per_s / 1e6:.1f}M samples/s"
    if samples_per_s >= 1e4:
        return f"{samples_per_s / 1e3:.0f}k samples/s"
    return f"{samples_per_s:,.0f} samples/s"


def describe_decision(d: Decision) -> str:
    """A control decision in words, as the shell, the logs and the dashboard say it."""
    what = d.edit.describe() if d.edit else ("unreadable request" if d.action == "?" else d.action)
    who = f" (from {d.sender})" if d.sender else ""
    if d.decision == "queued":
        return f"edit queued: {what}, applies after epoch {d.epoch}{who}"
    if d.decision == "applied" and d.action == "edit":
        return f"edit applied after epoch {d.epoch}: {what}{who}"
    if d.decision == "applied" and d.action == "stop":
        return f"stop requested{who}: stopping before the next batch"
    if d.decision == "applied":
        return f"withdrew queued {', '.join(d.fields)}{who}"
    if d.decision == "withdrawn":
        whole = d.edit is None or set(d.fields) >= set(d.edit.as_dict())
        part = "" if whole or not d.fields else f"{', '.join(d.fields)} of "
        return f"edit withdrawn: {part}{what} ({d.reason})"
    line = f" (control.jsonl line {d.line})" if d.line else ""
    return f"{d.action} refused{line}: {d.reason}"


def short_path(path: str, limit: int = 40) -> str:
    """A path for a status line: ~ for the home folder, and its end if it is long."""
    home = str(Path.home())
    if path.startswith(home):
        path = "~" + path[len(home) :]
    return path if len(path) <= limit else "…" + path[-(limit - 1) :]
