"""Restyling the parameter fields once, not once for each change.

Textual restyles a widget, and everything in it, whenever one of its classes or
pseudo-classes changes: a field disabled, its value valid or not, a drop-down's value
set. Locking the panel for a run, or filling it from a run's record, changed each field
three or four times: about 95 restyles, 0.1 s of an attach to a finished run, before
its history was on screen. Widgets with `StyledOnce` mixed in ask for nothing while
they are not yet in the DOM (they are styled as they mount), and within
`restyled_once()` their requests wait, and each is restyled once at its end.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from textual.dom import DOMNode

_WAITING: ContextVar[set[DOMNode] | None] = ContextVar("steplr_restyle_waiting", default=None)


class StyledOnce:
    """Mix into a widget (before the widget class): see the module docstring."""

    def update_node_styles(self, animate: bool = True) -> None:
        if not self.is_attached:  # type: ignore[attr-defined]
            return
        waiting = _WAITING.get()
        if waiting is not None:
            waiting.add(self)  # type: ignore[arg-type]
            return
        super().update_node_styles(animate)  # type: ignore[misc]


@contextmanager
def restyled_once() -> Iterator[None]:
    """Hold the restyles that `StyledOnce` widgets ask for; at the end, restyle each of
    them (and what is in it) once."""
    if _WAITING.get() is not None:  # within another: that one restyles
        yield
        return
    waiting: set[DOMNode] = set()
    token = _WAITING.set(waiting)
    try:
        yield
    finally:
        _WAITING.reset(token)
        for node in waiting:
            # A widget in another that waits is restyled with it.
            if node.is_attached and not any(a in waiting for a in node.ancestors):
                node.app.update_styles(node)
