"""The parameter panel's drop-down: Textual's compact `Select`, in fewer widgets.

A Select is five widgets: itself, the line showing its value (a container with the
label and two arrows, three widgets more) and its list, hidden until opened. Five of
them, each styled, laid out and drawn, took about 50 ms of the dashboard's first frame.
Here the line is one widget that draws its label and arrow itself, as the four drew
them, and the list is mounted, compact, the first time it opens. What it does is
Select's own: keys, the list, type to search, `Changed`.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.color import Color
from textual.content import Content
from textual.css.query import NoMatches
from textual.css.styles import StylesBase
from textual.style import Style
from textual.widgets import Select
from textual.widgets._select import SelectCurrent, SelectOverlay
from textual.widgets.select import NoSelection

from steplr_tui.viewer.widgets.keys import OrderedKeys
from steplr_tui.viewer.widgets.restyle import StyledOnce

__all__ = ["ChoiceSelect"]


class ChoiceCurrent(StyledOnce, SelectCurrent):
    """The line that shows the value: the label, then the arrow (up while open), drawn
    by this one widget as SelectCurrent's label and arrow widgets draw them."""

    COMPONENT_CLASSES = {"choice-current--label", "choice-current--arrow"}
    # One line (a container's height was its children's); the colours of Select's label
    # and arrow widgets.
    DEFAULT_CSS = """
    ChoiceCurrent {
        height: 1;
        & > .choice-current--label { color: $foreground 50%; }
        &.-has-value > .choice-current--label { color: $foreground; }
        & > .choice-current--arrow { color: $foreground 50%; }
    }
    """

    def compose(self) -> ComposeResult:
        return ()

    def update(self, label: object) -> None:
        self.label = label  # type: ignore[assignment]
        self.has_value = not isinstance(label, NoSelection)
        self.refresh()

    def render(self) -> Content:
        width = self.content_size.width
        label = self.placeholder if isinstance(self.label, NoSelection) else str(self.label)
        # SelectCurrent's label is a 1fr-wide Static, its arrow 1 cell after a cell of
        # padding; a label too long for its cells wraps, and the field's one line shows
        # the first.
        cells = max(width - 2, 0)
        lines = Content(label).wrap(cells) if cells else []
        first = lines[0].plain if lines else ""
        expanded = isinstance(self.parent, Select) and self.parent.expanded
        # Textual fades a disabled field's widgets toward what lies under each: the
        # label and arrow widgets lay over the line, already faded, and were faded
        # toward it. Drawn here, over the panel, the colours are given that fading them
        # toward the panel turns into the same.
        unfaded = Color(0, 0, 0, 0)
        for node in reversed(self.ancestors_with_self):
            unfaded += node.styles.background.tint(node.styles.background_tint)
        return Content.assemble(
            (first, self._style(self.get_component_styles("choice-current--label"), unfaded)),
            # The rest of the label's cells and the arrow's padding, in the line's colour.
            (" " * (cells - len(first) + 1), self._style(self.styles, unfaded)),
            (
                "▲" if expanded else "▼",
                self._style(self.get_component_styles("choice-current--arrow"), unfaded),
            ),
        )

    def _style(self, styles: StylesBase, unfaded: Color) -> Style:
        base, line = self.background_colors
        opacity = self.opacity
        drawn = line + styles.color  # as the label and arrow widgets drew it
        if opacity < 1 and drawn.ansi is None:  # Textual fades no ANSI colour
            drawn = _fades_into(line.blend(drawn, opacity), base, opacity)
        return Style(background=unfaded, foreground=drawn)


def _fades_into(target: Color, base: Color, opacity: float) -> Color:
    """The colour that Textual's fading toward `base` by `opacity` turns into `target`
    (exactly: each channel is rounded down as it is faded)."""

    def channel(wanted: int, under: int) -> int:
        guess = round(under + (wanted - under) / opacity)
        near = [x for x in range(guess - 2, guess + 3) if 0 <= x <= 255] or [0, 255]
        return min(near, key=lambda x: (abs(int(under + (x - under) * opacity) - wanted), x))

    return Color(channel(target.r, base.r), channel(target.g, base.g), channel(target.b, base.b))


class ChoiceOverlay(StyledOnce, SelectOverlay):
    """Select's list, hidden until opened."""


class ChoiceSelect(StyledOnce, OrderedKeys, Select):
    """A compact drop-down whose keys land in order too."""

    shown_options: list[tuple[str, str]] | None = None  # the options last set

    def compose(self) -> ComposeResult:
        # The one-widget line, showing the value it starts with (set as it mounted, the
        # value restyled each line once more). The list is mounted the first time it
        # opens: five hidden lists, each mounted and styled, took 20 ms of the
        # dashboard's first frame.
        current = ChoiceCurrent(self.prompt)
        prompt = self._prompt_of(self._value)
        if prompt is not None:
            current.label = prompt
            current.has_value = True  # not in the DOM yet: no restyle (StyledOnce)
        yield current

    def _prompt_of(self, value: object) -> object | None:
        """The label of the option whose value is `value` (None: blank, or none)."""
        if value == self.NULL:
            return None
        return next((prompt for prompt, option in self._options if option == value), None)

    def _list(self) -> ChoiceOverlay | None:
        return next((c for c in self.children if isinstance(c, ChoiceOverlay)), None)

    def validate_expanded(self, expanded: bool) -> bool:
        # Before Select opens its list (its watcher asks for it): mounted now, compact
        # from the start (the fields never change compactness), with the options. Select
        # asks for its list in three more places, overridden below until it exists.
        if expanded and self._list() is None and self.is_attached:
            overlay = ChoiceOverlay(type_to_search=self._type_to_search)
            overlay.compact = self.compact
            self.mount(overlay)
            super()._setup_options_renderables()
        return expanded

    def _watch_prompt(self, prompt: str) -> None:
        if self._list() is not None or not self.is_mounted:
            super()._watch_prompt(prompt)
            return
        # As Select's own; the list takes the prompt as it is mounted.
        current = self.query_one(ChoiceCurrent)
        current.placeholder = prompt
        if self._allow_blank and self.value == self.NULL:
            current.update(self.NULL)

    def _setup_options_renderables(self) -> None:
        if self._list() is not None:  # else the list gets the options as it is mounted
            super()._setup_options_renderables()

    def _watch_value(self, value: object) -> None:
        if self._list() is not None:
            super()._watch_value(value)  # type: ignore[arg-type]
            return
        # As Select's own, less highlighting the value in the list (it is as it opens).
        self._value = value  # type: ignore[assignment]
        try:
            current = self.query_one(ChoiceCurrent)
        except NoMatches:
            return
        prompt = self._prompt_of(value)
        if value == self.NULL:
            current.update(self.NULL)
        elif prompt is not None:
            current.update(prompt)
        self.post_message(self.Changed(self, value))  # type: ignore[arg-type]

    def watch_expanded(self, _expanded: bool) -> None:
        # The arrow turns: SelectCurrent showed one of two arrow widgets by a class.
        for current in self.query(ChoiceCurrent):
            current.refresh()
