"""The attacker's view of a published table: every count it still shows or implies
(directly, as n - count, through a shown share and its n, as a statistic of few persons,
through the relations, or against a table sharing the cell). `gate.publish` refuses a
table with any; tests and the export stage run it on every written file."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import polars as pl

from pipeline.report.publication.cells import Cells, build_cells
from pipeline.report.publication.gate import _link_state, followed_hidden
from pipeline.report.publication.spec import (
    HIDDEN_TEXT,
    CellRef,
    DisclosureRules,
    TableSpec,
    Unprinted,
    is_shown,
    number,
    row_groups,
    shows_value,
)
from pipeline.stats.disclosure import feasible_intervals, recoverable_cells


def violations(
    frame: pl.DataFrame,
    spec: TableSpec,
    rules: DisclosureRules,
    published: Mapping[str, pl.DataFrame] | None = None,
) -> list[str]:
    """Every count `frame` (text columns, as written) shows or implies that the rules forbid:
    one message per cell naming file, column, row and why; empty when it may be released."""
    published = published or {}
    cells = build_cells(frame, spec, rules)
    out = []

    def say(key: CellRef, what: str) -> None:
        row, column = key
        named = ", ".join(f"{k}={frame[k][row]}" for k in spec.keys if k in frame.columns)
        out.append(
            f"{spec.file}: column '{column}', data row {row + 1}"
            + (f" ({named})" if named else "")
            + f": {what}"
        )

    if rules.method == "round":
        shares = {share for share, _n, _s in spec.implied_cells_of(frame)}
        for key, value in zip(cells.keys, cells.values, strict=True):
            printed = not isinstance(key, Unprinted) and key[1] not in spec.implied
            printed = printed and key not in shares
            if printed and value is not None and value % rules.round_to:
                say(key, f"count {value:g} is not rounded")
        return out
    for i, key in enumerate(cells.keys):
        value = cells.values[i]
        if isinstance(key, Unprinted):
            if value is not None and rules.is_small(value):
                shown_member = _shown_member(cells, i)
                if shown_member is not None:
                    say(
                        shown_member,
                        f"with the cells shown with it, it implies a count of {value:g} "
                        f"(below {rules.min_count})",
                    )
        elif value is not None and rules.is_small(value):
            say(key, f"count {value:g} is below {rules.min_count}")

    def source_hidden(row: int, column: str) -> bool:
        """A source hidden: an unknown count, a ".." cell, or a share of an n not shown."""
        i = cells.ref((row, column))
        if (i is not None and cells.values[i] is None) or frame[column][row] == HIDDEN_TEXT:
            return True
        implied = spec.implied.get(column)
        return implied is not None and not is_shown(frame[implied[0]][row])

    def tells(row: int, column: str) -> bool:
        """A value, or an empty text that tells a value ("" stars beside ".." elsewhere)."""
        return frame[column][row] not in (None, HIDDEN_TEXT)

    for column, sources in spec.derived.items():
        for row in range(frame.height):
            if tells(row, column) and any(source_hidden(row, s) for s in sources):
                say((row, column), "a value derived from a hidden count is shown")
    for column, (sources, keys) in spec.derived_over.items():
        for rows in row_groups(frame, keys).values():
            hidden = any(source_hidden(r, src) for r in rows for src in sources)
            for r in rows if hidden else []:
                if tells(r, column):
                    say((r, column), "a value derived from a hidden count of its group is shown")
    for column, (n_column, _scale) in spec.implied.items():
        for row in range(frame.height):
            if is_shown(frame[column][row]) and not is_shown(frame[n_column][row]):
                say((row, column), "a share of an n that is not shown")
    for share, n_cell, _scale in spec.implied_cells_of(frame):
        if is_shown(frame[share[1]][share[0]]) and not is_shown(frame[n_cell[1]][n_cell[0]]):
            say(share, "a share of an n that is not shown")
    text_columns = set(spec.text_columns(frame.columns))
    for key, sources in spec.derived_cells_of(frame):
        shown = shows_value(frame[key[1]][key[0]], key[1] in text_columns)
        if shown and not all(is_shown(frame[c][r]) for r, c in sources):
            say(key, "a value computed from a hidden or empty cell is shown")
    for column, n_column in spec.stats.items():
        for row in range(frame.height):
            n = number(frame[n_column][row])
            if is_shown(frame[column][row]) and (n is None or n < rules.min_count):
                say(
                    (row, column),
                    f"a statistic of {'a hidden' if n is None else f'{n:g}'} persons is shown",
                )
    unknown = [v is None for v in cells.values]
    targets = [i for i, u in enumerate(unknown) if u]
    if targets and cells.relations:
        shown = [0.0 if v is None else v for v in cells.values]
        for i, (low, high) in feasible_intervals(shown, cells.relations, unknown, targets).items():
            key = cells.keys[i]
            if 0 < high < rules.min_count:  # known to be small (1..min_count-1) unless 0
                where = key if not isinstance(key, Unprinted) else _shown_member(cells, i)
                if where is not None:
                    say(where, f"a hidden count is known to lie in [{low:g}, {high:g}]")
    for i, value in _recovered(cells):
        key = cells.keys[i]
        if rules.is_small(value) and not isinstance(key, Unprinted):
            say(key, f"a hidden count of {value:g} follows from the shown cells and the relations")
    for row, column in sorted(followed_hidden(frame, spec, published)):
        if shows_value(frame[column][row], column in text_columns):
            say((row, column), "computed from a cell another table hides")
    linked_hidden, _ = _link_state(frame, spec, cells, published)
    for i, hidden_there in enumerate(linked_hidden):
        if hidden_there and cells.values[i] is not None:
            say(cells.keys[i], "shown here but hidden in a table sharing the cell")  # type: ignore[arg-type]
    for column in frame.columns:
        for row, text in enumerate(frame[column].to_list()):
            if text is not None and number(text) is not None and not math.isfinite(number(text)):  # type: ignore[arg-type]
                say((row, column), f"non-finite value {text}")
    return out


def _recovered(cells: Cells) -> list[tuple[int, float]]:
    """Hidden cells (value unknown) that the shown cells and the relations determine, with
    the value they are determined to (least squares on the hidden unknowns; exact there)."""
    hidden = [v is None for v in cells.values]
    if not any(hidden) or not cells.relations:
        return []
    determined = recoverable_cells(len(cells.keys), cells.relations, hidden)
    if not determined:
        return []
    unknown = [i for i, h in enumerate(hidden) if h]
    column = {c: j for j, c in enumerate(unknown)}
    a = np.zeros((len(cells.relations), len(unknown)))
    b = np.zeros(len(cells.relations))
    for r, (total, parts) in enumerate(cells.relations):
        for cell, sign in [(total, -1.0), *((p, 1.0) for p in parts)]:
            if cell in column:
                a[r, column[cell]] += sign
            else:
                b[r] -= sign * cells.values[cell]  # type: ignore[operator]
    solution = np.linalg.lstsq(a, b, rcond=None)[0]
    return [(i, float(round(solution[column[i]], 6))) for i in determined]


def _shown_member(cells: Cells, unprinted: int) -> CellRef | None:
    """A printed cell an unprinted one follows from (where to point the message)."""
    for member in cells.complement_of.get(unprinted, []):
        key = cells.keys[member]
        if not isinstance(key, Unprinted):
            return key
    return None
