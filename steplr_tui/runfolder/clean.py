"""Text from a run folder made safe for a terminal. Plain Python, no imports of the package."""

from __future__ import annotations

import dataclasses
import re
import unicodedata
from typing import Any

# Terminal escape sequences: CSI (colours, cursor moves), OSC (titles, links), and the rest.
_ESCAPES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[P^_X][^\x1b]*(?:\x1b\\)?"
    r"|\x1b[@-Z\\-_]?|\x9b[0-?]*[ -/]*[@-~]"
)


def clean_text(text: object) -> str:
    """A text from a run folder (a folder name, a config value, a reason) made safe for a
    terminal: escape sequences removed, and every other control character (newlines,
    bidi overrides included) shown as '?', so a record cannot move the cursor, retitle
    the terminal or hide what a line says."""
    text = _ESCAPES.sub("", str(text))
    if text.isprintable():
        return text
    return "".join(
        c if c.isprintable() or c == " " else "?"
        for c in text
        if unicodedata.category(c) != "Cf" or c in "\u200d"
    )


_TEXT_FIELDS: dict[type, tuple[str, ...]] = {}


# Fields that name a file to open, not text to show: kept as they are.
_PATHS = ("path", "run_folder")


def _text_fields(kind: type) -> tuple[str, ...]:
    names = _TEXT_FIELDS.get(kind)
    if names is None:
        names = tuple(
            f.name
            for f in dataclasses.fields(kind)
            if f.name not in _PATHS and ("str" in str(f.type) or f.name == "config")
        )
        _TEXT_FIELDS[kind] = names
    return names


def clean_event(event: Any) -> Any:
    """An event (or any record of plain fields: a sweep's trial row) read from disk with
    every text field, and the text of its dicts, made safe for a terminal, as a viewer
    shows it; paths are kept. The same object is returned when it is clean."""
    if not dataclasses.is_dataclass(event) or isinstance(event, type):
        return event
    changes: dict[str, Any] = {}
    for name in _text_fields(type(event)):
        value = getattr(event, name)
        if isinstance(value, str):
            cleaned = clean_text(value)
            if cleaned != value:
                changes[name] = cleaned
        elif isinstance(value, dict):
            config = {
                clean_text(k): clean_text(v) if isinstance(v, str) else v for k, v in value.items()
            }
            if config != value:
                changes[name] = config
    return dataclasses.replace(event, **changes) if changes else event
