"""Widgets that stand in for Textual's own, fewer widgets to style before the first
frame: the drop-down's value line and the footer must look as Textual's compact Select
and Footer do, cell by cell, in every state and theme the dashboard shows."""

from __future__ import annotations

import html
import re

import pytest
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Footer, Select

from steplr_tui.viewer.widgets.choice import ChoiceCurrent, ChoiceOverlay, ChoiceSelect
from steplr_tui.viewer.widgets.footer import KeyFooter

OPTIONS = [("MNIST", "mnist"), ("Fashion-MNIST", "fashion-mnist"), ("sample", "sample")]


class OneSelect(App):
    CSS = "Vertical { width: 16; height: 6; } Select { height: 1; }"

    def __init__(
        self, kind: type[Select], value: str, disabled: bool, theme: str = "textual-dark"
    ) -> None:
        super().__init__()
        self.kind, self.value, self.disabled = kind, value, disabled
        self.theme = theme

    def compose(self) -> ComposeResult:
        with Vertical():
            yield self.kind(
                OPTIONS, value=self.value, allow_blank=False, compact=True, disabled=self.disabled
            )


def _cells(svg: str) -> dict[tuple[int, int], tuple[str, str, str]]:
    """The screenshot cell by cell: (character, its style, background). How Textual cut
    a line into segments (which the SVG shows) is not what anyone sees."""
    styles = dict(re.findall(r"\.(terminal-\d+-r\d+) \{ ([^}]*) \}", svg))
    width, height = 12.2, 24.4  # a cell, in the screenshot's units
    cells: dict[tuple[int, int], list[str]] = {}
    for fill, x, y, w in re.findall(
        r'<rect fill="([^"]+)" x="([\d.]+)" y="([\d.]+)" width="([\d.]+)"', svg
    ):
        row, first = round((float(y) - 1.5) / height), round(float(x) / width)
        for col in range(first, first + round(float(w) / width)):
            cells[row, col] = [" ", "", fill]
    for cls, x, y, text in re.findall(
        r'<text class="([^"]+)" x="([\d.]+)" y="([\d.]+)"[^>]*>(.*?)</text>', svg
    ):
        row, first = round((float(y) - 20) / height), round(float(x) / width)
        for i, char in enumerate(html.unescape(text)):
            cells.setdefault((row, first + i), [" ", "", ""])[:2] = [char, styles.get(cls, cls)]
    return {key: tuple(value) for key, value in cells.items()}


async def _screenshot(
    kind: type[Select], value: str, disabled: bool, expand: bool, theme: str = "textual-dark"
) -> dict:
    app = OneSelect(kind, value, disabled, theme)
    async with app.run_test(size=(30, 8)) as pilot:
        await pilot.pause()
        if expand:
            app.query_one(Select).expanded = True
            await pilot.pause()
        return _cells(app.export_screenshot())


@pytest.mark.parametrize(
    "value, disabled, expand, theme",
    [
        ("mnist", False, False, "textual-dark"),
        ("fashion-mnist", False, False, "textual-dark"),  # too wide: its first wrapped line
        ("sample", True, False, "textual-dark"),  # disabled: faded as Textual fades a Select
        ("mnist", False, True, "textual-dark"),  # open: the arrow turns, the list shows
        ("sample", True, False, "textual-light"),
        ("mnist", False, False, "nord"),
        ("sample", True, False, "ansi-dark"),
    ],
)
async def test_the_drop_down_looks_as_textuals_compact_select(value, disabled, expand, theme):
    mine = await _screenshot(ChoiceSelect, value, disabled, expand, theme)
    textuals = await _screenshot(Select, value, disabled, expand, theme)
    assert mine == textuals


async def test_its_value_line_is_one_widget_its_list_comes_when_opened_and_it_follows():
    app = OneSelect(ChoiceSelect, "mnist", False)
    async with app.run_test(size=(30, 8)) as pilot:
        await pilot.pause()
        select = app.query_one(ChoiceSelect)
        line = select.query_one(ChoiceCurrent)
        assert len(line.children) == 0 and list(select.children) == [line]
        select.value = "sample"  # a value set before the list exists
        await pilot.pause()
        assert str(line.render()).startswith("sample")
        select.focus()
        await pilot.press("enter")  # open: the list, highlighting the value
        await pilot.pause()
        overlay = select.query_one(ChoiceOverlay)
        assert select.expanded and overlay.has_focus and overlay.highlighted == 2
        await pilot.press("up", "enter")  # the option above, chosen
        await pilot.pause()
        assert select.value == "fashion-mnist" and not select.expanded
        assert str(line.render()).startswith("Fashion-") and select.has_focus


async def test_a_click_on_its_line_opens_the_list_and_a_click_chooses():
    app = OneSelect(ChoiceSelect, "mnist", False)
    async with app.run_test(size=(30, 8)) as pilot:
        await pilot.pause()
        select = app.query_one(ChoiceSelect)
        await pilot.click(ChoiceCurrent)
        await pilot.pause()
        overlay = select.query_one(ChoiceOverlay)
        assert select.expanded and overlay.display
        await pilot.click(ChoiceOverlay, offset=(2, 1))  # its second option
        await pilot.pause()
        assert select.value == "fashion-mnist" and not select.expanded


async def test_typing_in_its_open_list_picks_by_the_first_letters():
    app = OneSelect(ChoiceSelect, "mnist", False)
    async with app.run_test(size=(30, 8)) as pilot:
        await pilot.pause()
        select = app.query_one(ChoiceSelect)
        select.focus()
        await pilot.press("enter", "s", "enter")  # open, "sample", choose
        await pilot.pause()
        assert select.value == "sample" and not select.expanded


async def test_a_prompt_set_before_its_list_exists_shows_and_is_the_lists_blank():
    class Blank(App):
        def compose(self) -> ComposeResult:
            yield ChoiceSelect(OPTIONS, prompt="pick one", allow_blank=True, compact=True)

    app = Blank()
    async with app.run_test(size=(30, 8)) as pilot:
        await pilot.pause()
        select = app.query_one(ChoiceSelect)
        select.prompt = "choose"  # Select asked its list for the blank option's text
        await pilot.pause()
        assert str(select.query_one(ChoiceCurrent).render()).startswith("choose")
        select.focus()
        await pilot.press("enter")
        await pilot.pause()
        assert "choose" in str(select.query_one(ChoiceOverlay).get_option_at_index(0).prompt)


# ---- the footer: one widget drawing what Textual's compact Footer drew ---------------

# The dashboard's compact Footer, as it was styled before KeyFooter took its place.
OLD_FOOTER_CSS = """
Footer.-compact FooterKey { margin-right: 0; }
Footer.-compact FooterKey .footer-key--description { padding: 0 1 0 0; }
"""


class Keys(App):
    BINDINGS = [
        Binding("ctrl+r", "noop", "Start"),
        Binding("f1", "noop", "Help"),
        Binding("f2", "noop", "X axis"),
        Binding("ctrl+q", "quit", "Quit"),
    ]

    def __init__(self, footer: type, theme: str) -> None:
        self.CSS = "" if footer is KeyFooter else OLD_FOOTER_CSS
        super().__init__()
        self.footer, self.theme = footer, theme

    def compose(self) -> ComposeResult:
        if self.footer is KeyFooter:
            yield KeyFooter()
        else:
            yield Footer(compact=True, show_command_palette=False)

    def action_noop(self) -> None:
        pass


async def _footer_cells(footer: type, theme: str) -> dict:
    app = Keys(footer, theme)
    async with app.run_test(size=(60, 3)) as pilot:
        await pilot.pause()
        await pilot.pause()
        return _cells(app.export_screenshot())


@pytest.mark.parametrize(
    "theme", ["textual-dark", "textual-light", "catppuccin-mocha", "ansi-dark"]
)
async def test_the_footer_looks_as_textuals_compact_footer(theme):
    assert await _footer_cells(KeyFooter, theme) == await _footer_cells(Footer, theme)
