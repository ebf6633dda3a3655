"""The rounding alternative to suppression (config `disclosure.method: round`, as
OpenSAFELY does): every printed count to the nearest `round_to`, those <= `round_floor`
to 0; implied shares recomputed from the rounded counts; other derived values left out;
statistics only of a rounded n >= the threshold."""

from __future__ import annotations

import math
from collections.abc import Sequence

import polars as pl

from pipeline.report.publication.spec import (
    CellRef,
    DisclosureRules,
    TableSpec,
    Unprinted,
    number,
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
    changed = 0
    for key, value in zip(keys, values, strict=True):
        if isinstance(key, Unprinted) or value is None:
            continue
        row, column = key
        new = rounded(value)
        changed += new != value
        if column in spec.implied:
            n_column, scale = spec.implied[column]
            n = rounded(number(columns[n_column][row]) or 0)
            columns[column][row] = None if n == 0 else repr(new / n * scale)
        else:
            columns[column][row] = str(new)
    for column in spec.derived:
        columns[column] = [None] * frame.height
    for column, n_column in spec.stats.items():
        columns[column] = [
            v if (number(columns[n_column][r]) or 0) >= rules.min_count else None
            for r, v in enumerate(columns[column])
        ]
    return pl.DataFrame(columns, schema={c: pl.String for c in frame.columns}), changed
