"""Tables that stay current without flicker: only the cells that changed are written."""

from __future__ import annotations

from collections.abc import Mapping

from rich.markup import escape
from textual.widgets import DataTable


def plain_cells(row: tuple[str, ...]) -> tuple[str, ...]:
    """Cells shown as they are: a table reads its strings as markup, and a run's name or
    message ("[rank 1] …") is not."""
    return tuple(escape(cell) for cell in row)


def update_rows(
    table: DataTable, shown: dict[str, tuple[str, ...]], rows: Mapping[str, tuple[str, ...]]
) -> None:
    """Write the cells of `rows` (by row key) that differ from `shown`, which then holds
    them. The rows must be in the table already, in the same order."""
    for key, row in rows.items():
        old = shown.get(key)
        if old == row:
            continue
        for column, (before, after) in enumerate(zip(old or (), row, strict=False)):
            if before != after:
                table.update_cell(key, table.ordered_columns[column].key, after)
        shown[key] = row
