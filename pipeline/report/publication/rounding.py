"""The rounding alternative to suppression (config `disclosure.method: round`, as
OpenSAFELY does): every printed count to the nearest `round_to`, those <= `round_floor`
to 0; implied shares recomputed from the rounded counts; other derived values (per
column or per cell, in a row or over a group) left out; statistics only of a rounded
n >= the threshold."""

from __future__ import annotations

import math
from collections.abc import Sequence

import polars as pl

from pipeline.report.publication.spec import (
    CellRef,
    DisclosureRules,
    TableSpec,
    Unprinted,
    count_only,
    number,
    shows_share,
)


def rounded_table(
    frame: pl.DataFrame,
    spec: TableSpec,
    rules: DisclosureRules,
    keys: Sequence[CellRef | Unprinted],
    values: Sequence[float | None],
) -> tuple[pl.DataFrame, int]:
    """`frame` (text columns) with its count cells (`keys`, `values`) rounded, and how many
    cells rounding changed; grain: the table's rows."""

    def rounded(v: float) -> int:
        if v <= rules.round_floor:
            return 0
        return int(rules.round_to * math.floor(v / rules.round_to + 0.5))

    columns = {c: frame[c].to_list() for c in frame.columns}
    implied: dict[CellRef, tuple[CellRef, float]] = {
        (row, column): ((row, n_column), scale)
        for column, (n_column, scale) in spec.implied.items()
        for row in range(frame.height)
    }
    implied |= {share: (n, scale) for share, n, scale in spec.implied_cells_of(frame)}
    changed = 0
    for key, value in zip(keys, values, strict=True):
        if isinstance(key, Unprinted) or value is None:
            continue
        row, column = key
        new = rounded(value)
        changed += new != value
        if key in implied:
            (n_row, n_column), scale = implied[key]
            n = rounded(number(frame[n_column][n_row]) or 0)
            columns[column][row] = None if n == 0 else repr(new / n * scale)
        else:
            columns[column][row] = str(new)
    for column in (*spec.derived, *spec.derived_over):
        columns[column] = [None] * frame.height
    text_columns = set(spec.text_columns(frame.columns))
    for (row, column), _sources in spec.derived_cells_of(frame):
        text = columns[column][row]
        if column not in text_columns:
            columns[column][row] = None
        elif shows_share(text):  # a printed cell keeps its (rounded) count
            columns[column][row] = count_only(text)
    for column, n_column in spec.stats.items():
        columns[column] = [
            v if (number(columns[n_column][r]) or 0) >= rules.min_count else None
            for r, v in enumerate(columns[column])
        ]
    if spec.flag and spec.flag not in columns:  # the same columns as a suppressed table
        columns[spec.flag] = ["false"] * frame.height
    return pl.DataFrame(columns, schema={c: pl.String for c in columns}), changed
