"""The dashboard's footer: the keys that fit. Below 100 columns it leaves some out; they
still work (Textual's `check_action` would disable them), and f1 lists them all."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Footer
from textual.widgets._footer import FooterKey


class FittedFooter(Footer):
    """A Footer that leaves out the keys its screen's `footer_hidden()` names."""

    def compose(self) -> ComposeResult:
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
