"""Errors meant for the user: one clear message, no traceback."""

from __future__ import annotations


class PipelineError(Exception):
    """A problem with the input or configuration that the user must fix.

    The CLI prints the message alone (no traceback) and exits with status 2.
    """


class DeliveryError(PipelineError):
    """A delivery file or column is missing, or a column cannot be read at all."""

    def __init__(self, table: str, column: str | None, expected: str, found: str = "") -> None:
        self.table, self.column, self.expected, self.found = table, column, expected, found
        where = f"table {table!r}" + (f", column {column!r}" if column else "")
        message = f"{where}: expected {expected}"
        if found:
            message += f"; found {found}"
        super().__init__(message)
