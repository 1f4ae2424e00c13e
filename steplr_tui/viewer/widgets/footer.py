"""The dashboard's footer: its keys, drawn as one line by one widget. Below 100 columns
it leaves some out; they still work (Textual's `check_action` would disable them), and
f1 lists them all.

It looks and acts as Textual's compact `Footer` does (a click on a key presses it, a
disabled key is dim and rings the bell, the key under the mouse is highlighted), but
Textual's makes a widget for each key: fourteen widgets composed, styled, laid out and
drawn took about 40 ms of the first frame, and were made again whenever the keys
changed. Here a change of keys repaints one line.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from rich.cells import cell_len
from rich.style import Style
from rich.text import Text
from textual import events
from textual.screen import Screen
from textual.widget import Widget


class FooterItem(NamedTuple):
    """One key in the footer, and the columns it takes."""

    key: str  # the key pressed, "ctrl+r"
    label: str  # as shown, "^r"
    description: str
    action: str
    enabled: bool
    tooltip: str
    start: int
    end: int


class KeyFooter(Widget, can_focus=False):
    """The keys that the screen's bindings show, less those its `footer_hidden()` names."""

    ALLOW_SELECT = False
    COMPONENT_CLASSES = {"key-footer--key", "key-footer--description", "key-footer--hover"}
    # A compact Textual Footer's look (its FooterKey's colours).
    DEFAULT_CSS = """
    KeyFooter {
        dock: bottom;
        height: 1;
        color: $footer-foreground;
        background: $footer-background;
        text-wrap: nowrap;
        text-overflow: clip;
        &:hover { pointer: pointer; }
        & > .key-footer--key {
            color: $footer-key-foreground;
            background: $footer-key-background;
            text-style: bold;
        }
        & > .key-footer--description {
            color: $footer-description-foreground;
            background: $footer-description-background;
        }
        & > .key-footer--hover { background: $block-hover-background; }
    }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._items: tuple[FooterItem, ...] | None = None  # None: not read yet
        self._hover: int | None = None  # the item under the mouse

    @property
    def items(self) -> tuple[FooterItem, ...]:
        """The keys shown, in order."""
        if self._items is None:
            self._items = self._read_items(self.screen)
        return self._items

    def _read_items(self, screen: Screen) -> tuple[FooterItem, ...]:
        hidden_of = getattr(screen, "footer_hidden", None)
        hidden = frozenset(hidden_of()) if callable(hidden_of) else frozenset()
        items: list[FooterItem] = []
        actions: set[str] = set()
        x = 0
        for _node, binding, enabled, tooltip in screen.active_bindings.values():
            # As Textual's Footer: one key for each action, the first bound.
            if not binding.show or binding.action in actions:
                continue
            actions.add(binding.action)
            if binding.action in hidden:
                continue
            label = self.app.get_key_display(binding)
            # "^r" then "Start ": a compact Footer's key and its description.
            description = binding.description
            width = cell_len(label) + (cell_len(description) + 1 if description else 0)
            items.append(
                FooterItem(
                    binding.key,
                    label,
                    binding.description,
                    binding.action,
                    enabled,
                    tooltip or "",
                    x,
                    x + width,
                )
            )
            x += width
        return tuple(items)

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def _bindings_changed(self, screen: Screen) -> None:
        # Published on every focus change (each tab between fields): a repaint only when
        # the keys shown change.
        if not screen.app.app_focus or screen is not self.screen:
            return
        items = self._read_items(screen)
        if items != self._items:
            self._items = items
            self._hover = None
            self.refresh()

    def render(self) -> Text:
        key_style = self.get_component_rich_style("key-footer--key")
        description_style = self.get_component_rich_style("key-footer--description")
        hover = self.get_component_rich_style("key-footer--hover")
        text = Text(no_wrap=True, overflow="crop", end="")
        for index, item in enumerate(self.items):
            extra = Style(dim=not item.enabled)
            if index == self._hover:
                extra += Style(bgcolor=hover.bgcolor)
            text.append(item.label, key_style + extra)
            if item.description:
                text.append(f"{item.description} ", description_style + extra)
        return text

    def _item_at(self, x: int) -> int | None:
        for index, item in enumerate(self.items):
            if item.start <= x < item.end:
                return index
        return None

    def on_mouse_move(self, event: events.MouseMove) -> None:
        index = self._item_at(event.x)
        if index != self._hover:
            self._hover = index
            self.tooltip = self.items[index].tooltip or None if index is not None else None
            self.refresh()

    def on_leave(self, _event: events.Leave) -> None:
        if self._hover is not None:
            self._hover = None
            self.tooltip = None
            self.refresh()

    def on_mouse_down(self, event: events.MouseDown) -> None:
        index = self._item_at(event.x)
        if index is None:
            return
        item = self.items[index]
        if item.enabled:
            self.app.simulate_key(item.key)
        else:
            self.app.bell()
