"""Keys taken in the order they arrive, however fast they come.

Textual hands a printable key to the focused widget at once, but a key bound to
an action (backspace, enter, tab, arrows, space in a table) first bubbles up
through every parent's message queue before the app runs its binding. A burst of
keys (a paste, a laggy SSH link) is then applied out of order: twelve
backspaces and `0.005` gave an empty field. `OrderedKeys` runs the focused
widget's bindings in its own queue, in arrival order, and hands on a key that
arrived while focus was moving to the widget that has focus now.
"""

from __future__ import annotations

from textual import events


class OrderedKeys:
    """Mix into a focusable widget (before the widget class) to take keys in order."""

    async def _on_key(self, event: events.Key) -> None:
        app = self.app  # type: ignore[attr-defined]
        focused = app.focused
        if focused is not None and self in focused.ancestors:
            # A key of our own part bubbling up (a Select's open list): its own, as usual.
            # Forwarding it back down would send it round for ever.
            await super()._on_key(event)  # type: ignore[misc]
            return
        if focused is not None and focused is not self:
            # Queued for us while a tab moved focus on: it belongs to the new field.
            event.stop()
            event.prevent_default()
            focused._forward_event(events.Key(event.key, event.character))
            return
        await super()._on_key(event)  # type: ignore[misc]
        if event._stop_propagation:  # handled here (a printable character)
            return
        check = getattr(app, "_check_bindings", None)
        if check is not None and await check(event.key):
            event.stop()
            event.prevent_default()


def after_keys(widget, callback) -> None:
    """Run `callback` once the focused widget has taken every key that came before.

    For priority bindings (ctrl+r, ctrl+n...), which the app runs as soon as they
    arrive, before the keys typed ahead of them reach the field.
    """
    focused = widget.app.focused

    def later() -> None:
        now = widget.app.focused
        if now is not None and now is not focused:
            after_keys(widget, callback)  # focus moved on: wait for that field too
        else:
            callback()

    if focused is None:
        callback()
    else:
        focused.call_later(later)
