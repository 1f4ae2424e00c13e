"""What the dashboard's small forms share (a new sweep, a branch): each field is checked
as it is typed, ctrl+r or enter in a field starts (as ctrl+r starts a run on the
dashboard; ctrl+s means Stop everywhere), escape cancels."""

from __future__ import annotations

from typing import Any

from textual import on
from textual.binding import Binding
from textual.screen import ModalScreen
from textual.widgets import Input

from steplr_tui.viewer.widgets.keys import OrderedKeys


class FormInput(OrderedKeys, Input):
    """A form field whose keys land in the order they arrive (tab, then typing, fast)."""


class FormScreen(ModalScreen[Any]):
    """A form whose fields are FormInputs with ids `FIELDS_PREFIX` + key; `FIRST` is the
    key of the field focused when it opens. Subclasses check in `_check` and start in
    `action_start`."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+r", "start", "Start", priority=True),
    ]
    FIELDS_PREFIX = ""
    FIRST = ""

    def on_mount(self) -> None:
        self._check()
        self.query_one(f"#{self.FIELDS_PREFIX}{self.FIRST}", Input).focus()

    @on(Input.Changed)
    def _changed(self, _event: Input.Changed) -> None:
        self._check()

    @on(Input.Submitted)
    def _submitted(self, _event: Input.Submitted) -> None:
        self.action_start()

    def _text(self, key: str) -> str:
        return self.query_one(f"#{self.FIELDS_PREFIX}{key}", Input).value

    def _check(self) -> None:
        raise NotImplementedError

    def action_start(self) -> None:
        raise NotImplementedError

    def action_cancel(self) -> None:
        self.dismiss(None)
