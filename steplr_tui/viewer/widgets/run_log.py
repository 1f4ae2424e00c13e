"""The log pane: one line per notable event, rewrapped to the pane's width.

Its lines come from the run's events alone (plus the dashboard's own notes), so
a replayed run's log reads as a live one's. Epochs read like the reference
script's lines, with the lr written readably (`1e-7`, not `0.000000`).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import replace

from rich.measure import measure_renderables
from rich.segment import Segment
from rich.text import Text
from textual import events
from textual.cache import LRUCache
from textual.geometry import Size
from textual.reactive import Reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from steplr_tui.runfolder import (
    Decision,
    EpochEnd,
    Event,
    Notice,
    RunEnded,
    RunOpened,
    RunStarted,
    Status,
)
from steplr_tui.runfolder.runs_table import describe_params, short_name
from steplr_tui.runfolder.schedule import format_lr
from steplr_tui.runfolder.text import describe_decision, plural

LOG_LINES = 2000  # kept, to rewrap on a resize
SHOWN_LINES = 1000  # in the pane (wrapping a line costs ~0.1 ms)
# A replay's log is first written with its last lines only, so the first frame does
# not wait for a thousand lines to wrap; the rest follows this much later.
FIRST_LINES = 120
BACKFILL_S = 0.4


HERE = "this dashboard"


def event_lines(event: Event, me: str = "") -> list[str]:
    """What the log says about one event (nothing for progress). `me`: this viewer's
    sender name; what it asked for is said to come from this dashboard."""
    if isinstance(event, EpochEnd):
        acc = f"Test Accuracy: {event.test_acc:.2f}%" if math.isfinite(event.test_acc) else ""
        second = acc
        if event.metrics:
            extra = " · ".join(f"{k} {v:.4g}" for k, v in event.metrics.items())
            second = " · ".join(p for p in (acc, extra) if p)
        first = f"Epoch {event.epoch}, Loss: {event.train_loss:.4f}, LR: {format_lr(event.lr)}"
        return [first, second] if second else [first]
    if isinstance(event, RunOpened):
        name = " " + short_name(event.path.rsplit("/", 1)[-1]) if event.path else ""
        verb = f"resumes after epoch {event.first_epoch - 1}" if event.first_epoch > 1 else "starts"
        config = dict(event.config)
        total = config.get("epochs")
        extra = f", {total} epochs" if total else ""
        who = "your script" if event.kind == "script" else "run"
        return [f"{who.capitalize()}{name} {verb}: {describe_params(config)}{extra}"]
    if isinstance(event, RunStarted):
        world = f" x {event.world_size} ranks ({event.backend})" if event.world_size > 1 else ""
        data = f" · {event.dataset} {event.n_train:,}/{event.n_test:,}" if event.dataset else ""
        model = f" · {event.model}" if event.model else ""
        batch = f" · global batch {event.global_batch}" if event.world_size > 1 else ""
        return [f"{event.device}{world}{data}{model}{batch}"]
    if isinstance(event, Notice):
        return [f"{event.level}: {event.text}"]
    if isinstance(event, Decision):
        if event.action == "withdraw" and event.decision == "applied":
            return []  # the edits it withdrew each say so
        if me and event.sender == me:
            event = replace(event, sender=HERE)
        return [describe_decision(event)]
    if isinstance(event, RunEnded):
        done = plural(event.epochs_done, "epoch")
        if event.status is Status.COMPLETED:
            return [f"Run completed: {done} in {event.elapsed:.1f}s."]
        if event.status is Status.STOPPED:
            why = f"stopped from {HERE}" if me and event.message == f"stopped by {me}" else ""
            return [f"Run stopped after {done}: {why or event.message}."]
        if event.status is Status.PRUNED:
            return [f"Run PRUNED after {done}: {event.message}."]
        if event.status is Status.INTERRUPTED:
            return [f"Run INTERRUPTED after {done}: {event.message}."]
        return [f"Run FAILED after {done}: {event.message}"]
    return []


class RunLog(ScrollView):
    """Keeps its lines unwrapped, and wraps them again whenever its width changes.

    Written and drawn as Textual's `RichLog` writes and draws plain text (wrapped to the
    pane, at least `min_width` wide, the last `max_lines` kept), without being one:
    RichLog's module imports `rich.pretty`, and with it attrs where that is installed,
    12 ms of the dashboard's first frame for a log that only ever writes text.
    """

    DEFAULT_CSS = """
    RunLog {
        background: $surface;
        color: $foreground;
        overflow-y: scroll;
        scrollbar-gutter: stable;
    }
    """
    # Each write grows the virtual size, and Textual's own reactive then lays the whole
    # screen out and redraws all of it (a few times a second, following a fast run; a
    # key typed meanwhile waited). Once the scrollbar is shown, more lines only move its
    # thumb: that is updated here, and the log repaints alone (`_watch_virtual_size`).
    virtual_size: Reactive[Size] = Reactive(Size(0, 0), layout=False)

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.border_title = "Log"
        # No tab stop: the fields are what keys are for, and a focused log took typed
        # text without a sign (the wheel still scrolls it, and it follows its end).
        self.can_focus = False
        self.max_lines = SHOWN_LINES
        self.min_width = 10
        self.auto_scroll = True
        self.lines: list[Strip] = []  # wrapped, as drawn: the last `max_lines`
        self._start_line = 0  # lines dropped from the top so far
        self._widest = 0
        self._line_cache: LRUCache[tuple[int, int, int, int], Strip] = LRUCache(1024)
        self._size_known = False
        self.kept: deque[str] = deque(maxlen=LOG_LINES)
        self._pending: list[str] = []
        self._wrapped_at = 0
        # It shows its end (as it does until the user scrolls away): kept as it scrolls,
        # since a write's own scroll to the end waits for a refresh.
        self._following = True

    # ---- the lines, written and drawn -----------------------------------------------

    def write(self, content: str, scroll_end: bool | None = None) -> None:
        """Text, wrapped to the pane (its longest line's width, at most the pane's and
        at least `min_width`), added at the end; scrolled to it with `auto_scroll`."""
        text = Text(content)
        text.expand_tabs()
        console = self.app.console
        options = console.options
        measured = measure_renderables(console, options, [text]).maximum
        width = max(min(measured, self.scrollable_content_region.width), self.min_width)
        lines = list(Segment.split_lines(console.render(text, options.update_width(width))))
        if not lines:
            self._widest = max(width, self._widest)
            self.lines.append(Strip.blank(width))
        else:
            strips = Strip.from_lines(lines)
            for strip in strips:
                strip.adjust_cell_length(width)
            self.lines.extend(strips)
            if len(self.lines) > self.max_lines:
                self._start_line += len(self.lines) - self.max_lines
                self.refresh()
                self.lines = self.lines[-self.max_lines :]
            self._widest = max(self._widest, max(s.cell_length for s in strips))
        self.virtual_size = Size(self._widest, len(self.lines))
        if self.auto_scroll if scroll_end is None else scroll_end:
            self.scroll_end(animate=False, immediate=False, x_axis=False)

    def clear(self) -> None:
        self.lines.clear()
        self._line_cache.clear()
        self._start_line = 0
        self._widest = 0
        self.virtual_size = Size(0, 0)
        self.refresh()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._line_cache.clear()

    def get_content_width(self, container: Size, viewport: Size) -> int:
        return self.virtual_size.width if self._size_known else container.width

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.scrollable_content_region.width
        index = scroll_y + y
        if index >= len(self.lines):
            return Strip.blank(width, self.rich_style).apply_style(self.rich_style)
        key = (index + self._start_line, scroll_x, width, self._widest)
        line = self._line_cache.get(key)
        if line is None:
            line = self.lines[index].crop_extend(scroll_x, scroll_x + width, self.rich_style)
            self._line_cache[key] = line
        return line.apply_style(self.rich_style)

    def add(self, lines: list[str]) -> None:
        """Queue lines; they are written with the next `flush` (one write, one layout)."""
        self.kept.extend(lines)
        self._pending.extend(lines)

    def reset(self) -> None:
        self.kept.clear()
        self._pending.clear()
        self.clear()

    @property
    def has_pending(self) -> bool:
        return bool(self._pending)

    def flush(self) -> bool:
        """Write what is queued; False if it must wait (the pane has no width yet)."""
        if not self._pending:
            return True
        if not self.size.width:
            return False
        first = not self.lines and len(self._pending) > FIRST_LINES
        self.write("\n".join(self._pending[-(FIRST_LINES if first else SHOWN_LINES) :]))
        self._pending.clear()
        self._wrapped_at = self._wrap_width()
        if first:
            self.set_timer(BACKFILL_S, self._backfill)
        return True

    def _backfill(self) -> None:
        """Write every kept line, in place of the first ones (the view stays at the end
        unless the user scrolled away)."""
        at_end = self._following
        self._pending.clear()
        self.clear()
        self.write("\n".join(list(self.kept)[-SHOWN_LINES:]), scroll_end=at_end)
        self._wrapped_at = self._wrap_width()

    def _wrap_width(self) -> int:
        """The width a write wraps its lines to (the content's, inside the border and the
        scrollbar's gutter)."""
        return self.scrollable_content_region.width

    def _watch_virtual_size(self, size: Size) -> None:
        if self.show_vertical_scrollbar and size.height > self.scrollable_content_region.height:
            self._scroll_update(size)  # what a layout would do for it (the thumb)
            self.refresh()
        else:
            self.refresh(layout=True)  # the scrollbar comes or goes: a real layout

    def watch_show_vertical_scrollbar(self, shown: bool) -> None:
        # Textual scrolls only once the scrollbar is shown, which a busy app may lay out
        # after a write's scroll to the end has come and gone: the log stayed at its top.
        if shown and self._following:
            self.scroll_end(animate=False, immediate=True, x_axis=False)

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        self._following = new_value >= self.max_scroll_y - 1

    def on_resize(self, event: events.Resize) -> None:
        if event.size.width:
            self._size_known = True
        # A log that showed its end goes on showing it when its height changes (the
        # panes above it grow and shrink as a run starts and ends).
        at_end = self._following
        if self._pending and not self.lines:
            return  # the first flush writes them (its last lines first, for a long replay)
        # Only when the width lines wrap to changed. A resize also comes with each
        # layout that finds more lines written (its virtual size), and `event.size` is
        # the pane's outer size: compared with the wrap width, it rewrote all 1000 lines
        # every time, for 1 to 2.5 s of the event loop under load (keys waited that long).
        width = self._wrap_width()
        if width and width != self._wrapped_at:
            self._wrapped_at = width
            self._pending.clear()
            self.clear()
            if self.kept:
                self.write("\n".join(list(self.kept)[-SHOWN_LINES:]))
        if at_end and self.auto_scroll:
            self.call_after_refresh(self.scroll_end, animate=False, x_axis=False)
