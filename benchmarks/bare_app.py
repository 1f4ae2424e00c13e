"""A bare Textual app with three widgets: the yardstick for steplr-tui's first frame.

A header, a line of text and a footer whose one key ("Quit", ctrl+q) is drawn last,
as the dashboard's footer is: the benchmark times both until "Quit" is on screen.

With `--dashboard-imports` it first imports what the dashboard's first frame imports:
the floor of any first frame of steplr-tui's, whatever it draws.
"""

import sys

from textual.app import App, ComposeResult
from textual.widgets import Footer, Header, Static


class BareApp(App):
    BINDINGS = [("ctrl+q", "quit", "Quit")]

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("A bare Textual app.")
        yield Footer()


if __name__ == "__main__":
    if "--dashboard-imports" in sys.argv:
        import steplr_tui.cli.main
        import steplr_tui.viewer.app  # noqa: F401
    BareApp().run()
