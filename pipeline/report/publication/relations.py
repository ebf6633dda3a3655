"""Relation and link builders for the table specs: what a reader can add up or subtract
across the rows of a table, or find again in another table. Each returns relations
total = sum(parts) over cells (`spec.Relation`) or pairs of shared cells."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence

import polars as pl

from pipeline.report.publication.spec import (
    CellRef,
    Relation,
    Unprinted,
    number,
    row_groups,
)


def margin(
    columns: Sequence[str] | None, within: Sequence[str], over: str, total: str
) -> Callable[[pl.DataFrame], list[Relation]]:
    """Within each group of `within`, the row whose `over` is `total` holds the sum of the
    other rows, for each of `columns` (None: every column but `within` and `over`)."""

    def build(frame: pl.DataFrame) -> list[Relation]:
        out: list[Relation] = []
        labels = frame[over].to_list()
        names = columns or [c for c in frame.columns if c not in (*within, over)]
        for rows in row_groups(frame, within).values():
            totals = [r for r in rows if labels[r] == total]
            parts = [r for r in rows if labels[r] != total]
            for column in names:
                out += [((t, column), [(p, column) for p in parts]) for t in totals if parts]
        return out

    return build


def contains(frame: pl.DataFrame, a: int, b: int, columns: Sequence[str]) -> list[Relation]:
    """Row `a` counts every person of row `b`, per column: a = b + the unprinted rest."""
    out: list[Relation] = []
    for column in columns:
        va, vb = number(frame[column][a]), number(frame[column][b])
        rest = None if va is None or vb is None else va - vb
        out.append(((a, column), [(b, column), Unprinted(rest)]))
    return out


def steps(
    columns: Sequence[str], within: Sequence[str] = (), order: Sequence[str] | None = None
) -> Callable[[pl.DataFrame], list[Relation]]:
    """Consecutive rows (within groups of `within`, in `order` or row order) of a count that
    can only fall: row i = row i+1 + what left between them, an unprinted count (attrition
    steps, cumulative windows read backwards, persons at risk)."""

    def build(frame: pl.DataFrame) -> list[Relation]:
        out: list[Relation] = []
        for rows in row_groups(frame, within).values():
            ordered = rows if order is None else [rows[i] for i in order_index(frame, rows, order)]
            for column in columns:
                # an empty cell is not applicable (or hidden upstream): the chain skips it
                present = [r for r in ordered if frame[column][r] not in (None, "")]  # ".." kept
                for a, b in itertools.pairwise(present):
                    out += contains(frame, a, b, (column,))
        return out

    return build


def order_index(frame: pl.DataFrame, rows: list[int], order: Sequence[str]) -> list[int]:
    """Positions of `rows` sorted by the text labels in `order` (a column: label order)."""
    column, *labels = order
    rank = {label: i for i, label in enumerate(labels)}
    values = frame[column].to_list()
    kept = [i for i, r in enumerate(rows) if values[r] in rank]
    return sorted(kept, key=lambda i: rank[values[rows[i]]])


def chained(
    start: str,
    leaving: Sequence[str],
    within: Sequence[str],
    order: str,
    only: dict[str, str] | None = None,
) -> Callable[[pl.DataFrame], list[Relation]]:
    """A life table: `start` of a band = `start` of the next band + the band's `leaving`
    counts (censored, events), within groups of `within` (those matching `only`), bands in
    numeric `order`; the last band's `start` = its leaving + the unprinted rest still at
    risk after the table's last day."""

    def build(frame: pl.DataFrame) -> list[Relation]:
        out: list[Relation] = []
        for key, rows in row_groups(frame, within).items():
            if only and any(
                dict(zip(within, key, strict=True)).get(k) != v for k, v in only.items()
            ):
                continue
            ordered = sorted(rows, key=lambda r: number(frame[order][r]) or 0)
            for a, b in itertools.pairwise(ordered):
                out.append(((a, start), [(b, start), *((a, c) for c in leaving)]))
            last = ordered[-1]
            values = [number(frame[c][last]) for c in (start, *leaving)]
            rest = None if None in values else values[0] - sum(values[1:])  # type: ignore[operator]
            out.append(((last, start), [*((last, c) for c in leaving), Unprinted(rest)]))
        return out

    return build


def row_sum(total: str, parts: Sequence[str]) -> Callable[[pl.DataFrame], list[Relation]]:
    """In every row, `total` = the sum of `parts` (e.g. contacts inside + outside spells)."""

    def build(frame: pl.DataFrame) -> list[Relation]:
        return [((r, total), [(r, p) for p in parts]) for r in range(frame.height)]

    return build


def group_total(
    total: str, part: str, within: Sequence[str]
) -> Callable[[pl.DataFrame], list[Relation]]:
    """Within each group of `within`, the group's `total` (repeated on its rows) = the sum of
    its rows' `part`; the repeated totals are one number (each equals the first)."""

    def build(frame: pl.DataFrame) -> list[Relation]:
        out: list[Relation] = []
        for rows in row_groups(frame, within).values():
            out.append(((rows[0], total), [(r, part) for r in rows]))
            out += [((rows[0], total), [(r, total)]) for r in rows[1:]]
        return out

    return build


def combine(
    *builders: Callable[[pl.DataFrame], list[Relation]],
) -> Callable[[pl.DataFrame], list[Relation]]:
    """All relations of several builders."""

    def build(frame: pl.DataFrame) -> list[Relation]:
        return [relation for b in builders for relation in b(frame)]

    return build


def same_rows(
    other: pl.DataFrame, keys: Sequence[str], where: dict[str, str] | None = None
) -> dict[tuple, int]:
    """Row index of the other table per tuple of its `keys`, among the rows matching `where`."""
    where = where or {}
    found = {}
    for row, values in enumerate(other.select(*keys, *where).iter_rows()):
        if list(values[len(keys) :]) == list(where.values()):
            found[values[: len(keys)]] = row
    return found


def column_link(
    column: str,
    other_column: str,
    keys: Sequence[str],
    other_keys: Sequence[str],
    where: dict[str, str],
) -> Callable[[pl.DataFrame, pl.DataFrame], list[tuple[CellRef, CellRef]]]:
    """Cells of `column` shared with `other_column` of the other table, rows matched on keys."""

    def cells(this: pl.DataFrame, other: pl.DataFrame) -> list[tuple[CellRef, CellRef]]:
        index = same_rows(other, other_keys, where)
        out = []
        for row, values in enumerate(this.select(keys).iter_rows()):
            if values in index:
                out.append(((row, column), (index[values], other_column)))
        return out

    return cells


def layout_link(
    row_keys: Sequence[str],
    other_row_keys: Sequence[str],
    header_keys: Sequence[str],
    other_column: str,
    where: dict[str, str] | None = None,
    split: str = "last",
) -> Callable[[pl.DataFrame, pl.DataFrame], list[tuple[CellRef, CellRef]]]:
    """Printed cells of a laid-out table ("<2 år Insats" columns, one row per category) and
    their cells in the long table: a header splits at its first (or `last`) space into the
    values of `header_keys`."""

    def cells(this: pl.DataFrame, other: pl.DataFrame) -> list[tuple[CellRef, CellRef]]:
        keys = (*other_row_keys, *header_keys)
        index = same_rows(other, keys, where)
        out = []
        for column in this.columns:
            if column in row_keys:
                continue
            head = column.rsplit(" ", 1) if split == "last" else column.split(" ", 1)
            if len(head) != len(header_keys):
                continue
            for row, values in enumerate(this.select(row_keys).iter_rows()):
                key = (*values, *head)
                if key in index:
                    out.append(((row, column), (index[key], other_column)))
        return out

    return cells


def nested(
    columns: Sequence[str], within: Sequence[str], over: str, outer: str, inner: str
) -> Callable[[pl.DataFrame], list[Relation]]:
    """A population inside another, row for row: within each group of `within`, the row whose
    `over` is `inner` counts a subset of the `outer` row's persons (B4's regained previous
    income among those with any income): outer = inner + the unprinted rest, per column."""

    def build(frame: pl.DataFrame) -> list[Relation]:
        out: list[Relation] = []
        labels = frame[over].to_list()
        for rows in row_groups(frame, within).values():
            big = [r for r in rows if labels[r] == outer]
            small = [r for r in rows if labels[r] == inner]
            for a, b in zip(big, small, strict=False):
                out += contains(frame, a, b, columns)
        return out

    return build


def inside(
    columns: Sequence[str],
    within: Sequence[str],
    outer: Mapping[str, str],
    inners: Sequence[Mapping[str, str]],
) -> Callable[[pl.DataFrame], list[Relation]]:
    """Populations inside another: within each group of `within`, the row matching `outer`
    counts every person of each row matching one of `inners` (Table 3's persons among
    B4/B5's, a window row's among its population): outer = inner + the unprinted rest."""

    def build(frame: pl.DataFrame) -> list[Relation]:
        out: list[Relation] = []

        def matches(row: int, where: Mapping[str, str]) -> bool:
            return all(frame[k][row] == v for k, v in where.items())

        for rows in row_groups(frame, within).values():
            for a in (r for r in rows if matches(r, outer)):
                for inner in inners:
                    for b in (r for r in rows if r != a and matches(r, inner)):
                        out += contains(frame, a, b, columns)
        return out

    return build


def row_total_of_the_rest(
    total: str, keys: Sequence[str]
) -> Callable[[pl.DataFrame], list[Relation]]:
    """In every row, the `total` column = the sum of every other column but the keys (a
    printed table whose columns are the parts of its last one, e.g. regions and all)."""

    def build(frame: pl.DataFrame) -> list[Relation]:
        parts = [c for c in frame.columns if c not in (*keys, total)]
        return [((r, total), [(r, p) for p in parts]) for r in range(frame.height)]

    return build


def same_as_total(
    columns: Sequence[str], within: Sequence[str], over: str, total: str
) -> Callable[[pl.DataFrame], list[Relation]]:
    """Within each group of `within`, every row's `columns` equal the `total` row's (a count
    that does not depend on `over`, e.g. a life table's censored spells at each care level)."""

    def build(frame: pl.DataFrame) -> list[Relation]:
        out: list[Relation] = []
        labels = frame[over].to_list()
        for rows in row_groups(frame, within).values():
            totals = [r for r in rows if labels[r] == total]
            for t in totals:
                out += [((t, c), [(r, c)]) for r in rows if r != t for c in columns]
        return out

    return build
