"""The legend under the plots: each overlay named whole, by its parameters and its run.

Up to four overlays (what the runs table allows) must all show, readable, from 80x24
up. Entries are never cut inside: where the full form does not fit, the legend says
less of each (only the parameters that tell the overlays apart, the run's time of day
without its date, no lead word) before it takes more lines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rich.text import Text
from textual.geometry import Size
from textual.widget import Widget

from steplr_tui.viewer.compare import Overlay
from steplr_tui.viewer.widgets.plots import markup_color, overlay_color

LEAD = "overlays: "
GAP = "   "
_STAMP = re.compile(r"(\d{8})-(\d{2})(\d{2})(\d{2})(\.\d+)?$")


@dataclass(frozen=True)
class _Form:
    """How much each entry says."""

    lead: bool
    distinct: bool  # only the parameters that differ between the overlays
    time_only: bool  # the run's time of day, without its date
    edited: str  # how a steered run is marked


FORMS = (
    _Form(True, False, False, " ✎ edited"),
    _Form(True, True, False, " ✎ edited"),
    _Form(True, True, True, " ✎"),
    _Form(False, True, True, " ✎"),
)


def _tokens(label: str) -> list[str]:
    """'adam lr 1e-3 s2 g0.1 b64' as ['adam', 'lr 1e-3', 's2', 'g0.1', 'b64']."""
    words = label.split()
    out: list[str] = []
    i = 0
    while i < len(words):
        if words[i] == "lr" and i + 1 < len(words):
            out.append(f"lr {words[i + 1]}")
            i += 2
        else:
            out.append(words[i])
            i += 1
    return out


def distinct_labels(overlays: list[Overlay]) -> list[str]:
    """Each overlay's parameters less those every overlay shares (one overlay: all)."""
    tokens = [_tokens(o.label) for o in overlays]
    if len(tokens) < 2:
        return [o.label for o in overlays]
    common = set(tokens[0]).intersection(*tokens[1:])
    return [" ".join(t for t in ts if t not in common) or "same settings" for ts in tokens]


def time_of_day(name: str) -> str:
    """'20261206-101500.2' as '10:15:00.2'; another name as it is."""
    match = _STAMP.match(name)
    if not match:
        return name
    _date, hh, mm, ss, rest = match.groups()
    return f"{hh}:{mm}:{ss}{rest or ''}"


def _entries(overlays: list[Overlay], form: _Form) -> list[Text]:
    labels = distinct_labels(overlays) if form.distinct else [o.label for o in overlays]
    out = []
    for i, (overlay, label) in enumerate(zip(overlays, labels, strict=True)):
        color = markup_color(overlay_color(i))
        entry = Text()
        entry.append(f"━ {label}", style=color)
        if overlay.edited:
            entry.append(form.edited, style=color)
        name = time_of_day(overlay.name) if form.time_only else overlay.name
        entry.append(f" {name}", style="dim")
        out.append(entry)
    return out


def _pack(entries: list[Text], width: int, lead: str) -> list[Text]:
    """Entries packed into lines of `width`, never broken inside an entry (an entry
    wider than a line is cut at its end, with an ellipsis)."""
    lines: list[Text] = []
    current = Text(lead)
    first = True
    for entry in entries:
        entry = entry.copy()
        if not first and current.cell_len + len(GAP) + entry.cell_len > width:
            lines.append(current)
            current, first = Text(" " * len(lead)), True
        if first:
            if current.cell_len + entry.cell_len > width:
                entry.truncate(max(width - current.cell_len, 1), overflow="ellipsis")
        else:
            current.append(GAP)
        current.append_text(entry)
        first = False
    lines.append(current)
    return lines


def legend_lines(overlays: list[Overlay], width: int, max_lines: int = 2) -> list[Text]:
    """The fullest form whose entries all fit, whole, in `max_lines` lines of `width`;
    where none does, one entry a line in the most compact form (a line narrower than
    that cuts its entry's end)."""
    for form in FORMS:
        entries = _entries(overlays, form)
        lead = LEAD if form.lead else ""
        lines = _pack(entries, width, lead)
        whole = all(len(lead) + e.cell_len <= width for e in entries)
        if len(lines) <= max_lines and whole:
            return lines
    return [_pack([entry], width, "")[0] for entry in _entries(overlays, FORMS[-1])]


class Legend(Widget):
    """Shown only while earlier runs are overlaid: two lines where they fit, else a
    line an overlay (four at most, as the runs table allows). Its lines are laid out
    for the width it is given, so its height is always theirs."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.overlays: list[Overlay] = []

    def show(self, overlays: list[Overlay]) -> None:
        self.overlays = list(overlays)
        self.display = bool(overlays)
        self.refresh(layout=True)

    def lines_for(self, width: int) -> list[Text]:
        if not self.overlays:
            return []
        width = max(width, 20)
        lines = legend_lines(self.overlays, width, 2)
        if len(lines) > 2:
            lines = legend_lines(self.overlays, width, len(self.overlays))
        return lines

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return max(len(self.lines_for(width)), 1)

    def render(self) -> Text:
        return Text("\n").join(self.lines_for(self.content_region.width or self.size.width))
