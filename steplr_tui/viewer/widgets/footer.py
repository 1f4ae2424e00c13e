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
        # Textual composes the footer again whenever bindings may have changed: on every
        # focus change, so on each tab from field to field (14 keys made, styled and laid
        # out, 30 ms). The same keys stay as they are.
        same = self._bindings_ready and screen is self.screen
        if same and self._keys_wanted(screen) == self._shown:
            return
        super().bindings_changed(screen)

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
