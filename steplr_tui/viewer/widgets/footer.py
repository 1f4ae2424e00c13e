"""The dashboard's footer: the keys that fit. Below 100 columns it leaves some out; they
still work (Textual's `check_action` would disable them), and f1 lists them all."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer
from textual.widgets._footer import FooterKey


class FittedFooter(Footer):
    """A Footer that leaves out the keys its screen's `footer_hidden()` names, and is
    composed again only when the keys it shows change."""

    _shown: tuple | None = None  # what the keys on screen were composed from
    _compose_due = False  # keys to compose again, after the messages queued now

    def _keys_wanted(self, screen: Screen) -> tuple:
        """Everything the keys are composed from: the bindings shown, enabled or not,
        the keys left out, and the style."""
        hidden_of = getattr(screen, "footer_hidden", None)
        hidden = frozenset(hidden_of()) if callable(hidden_of) else frozenset()
        shown = tuple(
            (b.key, b.description, b.action, enabled, tooltip, repr(b.group))
            for (_node, b, enabled, tooltip) in screen.active_bindings.values()
            if b.show
        )
        return (shown, hidden, self.compact)

    def bindings_changed(self, screen: Screen) -> None:
        # Textual's own composes the footer again after the next refresh, once for each
        # change of bindings: on every focus change (each tab from field to field: 14
        # keys made, styled and laid out, 30 ms), and an attach's first keys waited for
        # its history (0.2 s with no keys). Here: at once, once for a burst of
        # changes, and only when the keys shown change.
        self._bindings_ready = True
        if not screen.app.app_focus or not self.is_attached or screen is not self.screen:
            return
        if self._compose_due or self._keys_wanted(screen) == self._shown:
            return
        self._compose_due = True
        self.call_later(self._compose_keys)

    async def _compose_keys(self) -> None:
        self._compose_due = False
        if self._keys_wanted(self.screen) != self._shown:
            await self.recompose()

    def compose(self) -> ComposeResult:
        if self._bindings_ready:
            self._shown = self._keys_wanted(self.screen)
        hidden_of = getattr(self.screen, "footer_hidden", None)
        hidden = hidden_of() if callable(hidden_of) else set()
        shown = 0
        for widget in super().compose():
            if isinstance(widget, FooterKey) and widget.action in hidden:
                continue
            if isinstance(widget, FooterKey):
                shown += 1
                # Its compact class now, not from the binding once mounted: that restyled
                # each key after it was styled (14 keys, on every change of bindings).
                widget.set_class(self.compact, "-compact", update=False)
            yield widget
        if hidden:
            self.styles.grid_size_columns = max(shown, 1)
