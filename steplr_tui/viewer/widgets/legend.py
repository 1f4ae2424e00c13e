"""The legend under the plots: each overlay named whole, by its parameters and its run."""

from __future__ import annotations

from rich.text import Text
from textual import events
from textual.widgets import Static

from steplr_tui.viewer.compare import Overlay
from steplr_tui.viewer.widgets.plots import markup_color, overlay_color


def legend_lines(overlays: list[Overlay], width: int) -> list[Text]:
    """Entries packed into lines of `width`, never broken inside an entry (an entry
    wider than a line is cut at its end, with an ellipsis)."""
    lines: list[Text] = []
    lead = "overlays: "
    current = Text(lead)
    first = True
    for i, overlay in enumerate(overlays):
        color = markup_color(overlay_color(i))
        entry = Text()
        entry.append(f"━ {overlay.label}", style=color)
        if overlay.edited:
            entry.append(" ✎ edited", style=color)
        entry.append(f" {overlay.name}", style="dim")
        if not first and current.cell_len + 3 + entry.cell_len > width:
            lines.append(current)
            current, first = Text(" " * len(lead)), True
        if first:
            if current.cell_len + entry.cell_len > width:
                entry.truncate(max(width - current.cell_len, 1), overflow="ellipsis")
        else:
            current.append("   ")
        current.append_text(entry)
        first = False
    lines.append(current)
    return lines


class Legend(Static):
    """Shown only while earlier runs are overlaid."""

    def __init__(self, **kwargs) -> None:
        super().__init__("", **kwargs)
        self.overlays: list[Overlay] = []

    def show(self, overlays: list[Overlay]) -> None:
        self.overlays = list(overlays)
        self.display = bool(overlays)
        self._render_lines()

    def _render_lines(self) -> None:
        width = max(self.size.width, 20) if self.size.width else 100
        self.update(Text("\n").join(legend_lines(self.overlays, width)) if self.overlays else "")

    def on_resize(self, _event: events.Resize) -> None:
        self._render_lines()
