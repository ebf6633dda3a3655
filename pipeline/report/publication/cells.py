"""The count cells of one table as the gate and the attacker's check see them: every
count, printed count and share that implies one, with the relations between them
(margins, complements, the spec's relations); grain: one cell."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import polars as pl

from pipeline.report.publication.spec import (
    HIDDEN_TEXT,
    CellRef,
    DisclosureRules,
    Known,
    TableSpec,
    Unprinted,
    number,
    text_count,
)


@dataclass
class Cells:
    """The cells of one table: values (None = unknown), hidden on arrival, and relations."""

    keys: list[CellRef | Unprinted] = field(default_factory=list)
    values: list[float | None] = field(default_factory=list)
    arrived_hidden: list[bool] = field(default_factory=list)
    index: dict[CellRef | int, int] = field(default_factory=dict)
    relations: list[tuple[int, list[int]]] = field(default_factory=list)
    complement_of: dict[int, list[int]] = field(default_factory=dict)  # unprinted -> members
    marked: set[int] = field(default_factory=set)  # arrived as ".." (hidden by the stage)

    def add(self, key: CellRef | Unprinted, value: float | None, hidden: bool) -> int:
        """Index of the cell `key`, added once."""
        ref = id(key) if isinstance(key, Unprinted) else key
        if ref not in self.index:
            self.index[ref] = len(self.keys)
            self.keys.append(key)
            self.values.append(value)
            self.arrived_hidden.append(hidden)
        return self.index[ref]

    def ref(self, key: CellRef | Unprinted) -> int | None:
        """Index of a cell (an unprinted one is added on first sight); None if unknown."""
        if isinstance(key, Known):
            return self.add(key, key.value, False)
        if isinstance(key, Unprinted):
            return self.add(key, key.value, True)
        return self.index.get(key)

    def relate(self, total: CellRef | Unprinted, parts: Sequence[CellRef | Unprinted]) -> None:
        """Add total = sum(parts) when every member is a cell of the table."""
        members = [self.ref(total), *(self.ref(p) for p in parts)]
        if None not in members:
            self.relations.append((members[0], members[1:]))  # type: ignore[arg-type]


def _column(frame: pl.DataFrame, column: str) -> list[str | None]:
    return frame[column].to_list() if column in frame.columns else []


def build_cells(frame: pl.DataFrame, spec: TableSpec, rules: DisclosureRules) -> Cells:
    """Every count cell of `frame` (text columns) with its relations; grain: one cell."""
    cells = Cells()
    for column in spec.counts:
        for row, text in enumerate(_column(frame, column)):
            value = number(text)
            i = cells.add((row, column), value, value is None)
            if text == HIDDEN_TEXT:
                cells.marked.add(i)
    for column in spec.text_columns(frame.columns):
        for row, text in enumerate(_column(frame, column)):
            value = text_count(text)
            if value is not None or text in (None, "", HIDDEN_TEXT):
                i = cells.add((row, column), value, value is None)
                if text == HIDDEN_TEXT:
                    cells.marked.add(i)
    for column, (n_column, scale) in spec.implied.items():
        for row, (text, n_text) in enumerate(
            zip(_column(frame, column), _column(frame, n_column), strict=True)
        ):
            share, n = number(text), number(n_text)
            if n is None or (share is not None and not math.isfinite(share)):
                continue
            value = None if share is None else round(share * n / scale)
            cells.add((row, column), value, share is None)
    for share, n_cell, scale in spec.implied_cells_of(frame):
        value, n = number(frame[share[1]][share[0]]), number(frame[n_cell[1]][n_cell[0]])
        if n is None or (value is not None and not math.isfinite(value)):
            continue
        i = cells.add(share, None if value is None else round(value * n / scale), value is None)
        if rules.complement and cells.ref(n_cell) is not None:
            known = None not in (cells.values[i], cells.values[cells.ref(n_cell)])  # type: ignore[index]
            rest = Unprinted(n - cells.values[i] if known else None)  # type: ignore[operator]
            cells.relate(n_cell, [share, rest])
            cells.complement_of[cells.ref(rest)] = [i, cells.ref(n_cell)]  # type: ignore[index, list-item]
    if rules.complement:
        for count, n_column in spec.complements:
            for row in range(frame.height):
                c, n = cells.ref((row, count)), cells.ref((row, n_column))
                if c is None or n is None:
                    continue
                known = None not in (cells.values[c], cells.values[n])
                rest = Unprinted(cells.values[n] - cells.values[c] if known else None)  # type: ignore[operator]
                cells.relate((row, n_column), [(row, count), rest])
                cells.complement_of[cells.ref(rest)] = [c, n]  # type: ignore[index]
    for total, parts in spec.relations(frame) if spec.relations else []:
        cells.relate(total, parts)
        for key in (total, *parts):
            if isinstance(key, Unprinted):
                members = [cells.ref(k) for k in (total, *parts) if k is not key]
                cells.complement_of[cells.ref(key)] = [m for m in members if m is not None]  # type: ignore[index]
    return cells
