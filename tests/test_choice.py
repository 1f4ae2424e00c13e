"""The parameter panel's drop-down draws its value line as one widget: it must look and
act as Textual's compact Select does, in every state the panel shows."""

from __future__ import annotations

import html
import re

import pytest
from textual.app import App, ComposeResult
from textual.containers import Vertical
from textual.widgets import Select

from steplr_tui.viewer.widgets.choice import ChoiceCurrent, ChoiceSelect

OPTIONS = [("MNIST", "mnist"), ("Fashion-MNIST", "fashion-mnist"), ("sample", "sample")]


class OneSelect(App):
    CSS = "Vertical { width: 16; height: 6; } Select { height: 1; }"

    def __init__(self, kind: type[Select], value: str, disabled: bool) -> None:
        super().__init__()
        self.kind, self.value, self.disabled = kind, value, disabled

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


async def _screenshot(kind: type[Select], value: str, disabled: bool, expand: bool) -> dict:
    app = OneSelect(kind, value, disabled)
    async with app.run_test(size=(30, 8)) as pilot:
        await pilot.pause()
        if expand:
            app.query_one(Select).expanded = True
            await pilot.pause()
        return _cells(app.export_screenshot())


@pytest.mark.parametrize(
    "value, disabled, expand",
    [
        ("mnist", False, False),
        ("fashion-mnist", False, False),  # wider than its cells: the first wrapped line
        ("sample", True, False),  # disabled: faded as Textual fades the Select's widgets
        ("mnist", False, True),  # open: the arrow turns, the list shows
    ],
)
async def test_the_drop_down_looks_as_textuals_compact_select(value, disabled, expand):
    mine = await _screenshot(ChoiceSelect, value, disabled, expand)
    textuals = await _screenshot(Select, value, disabled, expand)
    assert mine == textuals


async def test_its_value_line_is_one_widget_and_follows_the_value():
    app = OneSelect(ChoiceSelect, "mnist", False)
    async with app.run_test(size=(30, 8)) as pilot:
        await pilot.pause()
        select = app.query_one(ChoiceSelect)
        line = select.query_one(ChoiceCurrent)
        assert len(line.children) == 0 and len(select.children) == 2
        select.focus()
        await pilot.press("enter", "down", "enter")  # open, next option, choose
        await pilot.pause()
        assert select.value == "fashion-mnist" and not select.expanded
        assert str(line.render()).startswith("Fashion-")
