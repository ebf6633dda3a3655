"""Relation and link builders for the table specs: what a reader can add up or subtract
across the rows of a table, or find again in another table. Each returns relations
total = sum(parts) over cells (`spec.Relation`) or pairs of shared cells."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import polars as pl

from pipeline.report.publication.gate import number
from pipeline.report.publication.spec import CellRef, Relation, Unprinted


def _groups(frame: pl.DataFrame, keys: Sequence[str]) -> dict[tuple, list[int]]:
    """Row indices per combination of `keys`, in row order (no keys: one group of all)."""
    if not keys:
        return {(): list(range(frame.height))}
    out: dict[tuple, list[int]] = {}
    for row, values in enumerate(frame.select(keys).iter_rows()):
        out.setdefault(values, []).append(row)
    return out


def margin(
    columns: Sequence[str], within: Sequence[str], over: str, total: str
) -> Callable[[pl.DataFrame], list[Relation]]:
    """Within each group of `within`, the row whose `over` is `total` holds the sum of the
    other rows, for each of `columns` (a table's margin)."""

    def build(frame: pl.DataFrame) -> list[Relation]:
        out: list[Relation] = []
        labels = frame[over].to_list()
        for rows in _groups(frame, within).values():
            totals = [r for r in rows if labels[r] == total]
            parts = [r for r in rows if labels[r] != total]
            for column in columns:
                out += [((t, column), [(p, column) for p in parts]) for t in totals if parts]
        return out

    return build


def steps(
    columns: Sequence[str], within: Sequence[str] = (), order: Sequence[str] | None = None
) -> Callable[[pl.DataFrame], list[Relation]]:
    """Consecutive rows (within groups of `within`, in `order` or row order) of a count that
    can only fall: row i = row i+1 + what left between them, an unprinted count (attrition
    steps, cumulative windows read backwards, persons at risk)."""

    def build(frame: pl.DataFrame) -> list[Relation]:
        out: list[Relation] = []
        for rows in _groups(frame, within).values():
            ordered = rows if order is None else [rows[i] for i in order_index(frame, rows, order)]
            for column in columns:
                # an empty cell is not applicable (or hidden upstream): the chain skips it
                present = [r for r in ordered if frame[column][r] not in (None, "")]  # ".." kept
                for a, b in itertools.pairwise(present):
                    va, vb = number(frame[column][a]), number(frame[column][b])
                    gap = None if va is None or vb is None else va - vb
                    out.append(((a, column), [(b, column), Unprinted(gap)]))
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
    start: str, leaving: Sequence[str], within: Sequence[str], order: str
) -> Callable[[pl.DataFrame], list[Relation]]:
    """A life table: `start` of a band = `start` of the next band + the band's `leaving`
    counts (censored, events), within groups of `within`, bands in numeric `order`."""

    def build(frame: pl.DataFrame) -> list[Relation]:
        out: list[Relation] = []
        for rows in _groups(frame, within).values():
            ordered = sorted(rows, key=lambda r: number(frame[order][r]) or 0)
            for a, b in itertools.pairwise(ordered):
                out.append(((a, start), [(b, start), *((a, c) for c in leaving)]))
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
        for rows in _groups(frame, within).values():
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
