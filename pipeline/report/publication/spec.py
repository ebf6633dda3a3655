"""What the publication gate knows of a table: its counts, denominators, derived values,
person statistics and relations (docs/methods.md, "Disclosure control").

A *cell* is one count a reader can see or infer: a count column's value in a row, the
count a shown percent and its n imply, the count in a printed "n (percent)" text cell,
or a *virtual* cell that is never printed but follows from two that are (n - count,
the persons dropped between two attrition steps). A *relation* says total = sum(parts)
over cells; the gate protects every small cell against all relations at once.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

CellRef = tuple[int, str]  # (row index, column) of a count cell in the table


@dataclass(eq=False)
class Unprinted:
    """A cell that is never printed but a reader can compute (n - count, the persons
    dropped between two steps); `value` None when a member it follows from is hidden."""

    value: float | None


class Known(Unprinted):
    """A number a reader knows without its being printed as a count here (ten times the
    expected count per decile is the number of sets); never hidden, never a complement."""

    value: float


Relation = tuple["CellRef | Unprinted", Sequence["CellRef | Unprinted"]]  # total = sum(parts)
TEXT_COUNT = re.compile(r"^\s*(\d[\d\u00a0\u202f ]*)(?:\s*\(|\s*$|\*)")
HIDDEN_TEXT = ".."  # a hidden cell, as SCB's tables print it (empty = not applicable)
ALL_BUT_KEYS = ("*",)  # `text`: every column but the keys is a printed "n (percent)" cell


@dataclass(frozen=True)
class DisclosureRules:
    """The output-checking rules (config `disclosure`): threshold for persons, whether a
    shown n protects n - count, zeros shown or hidden, and suppression or rounding."""

    min_count: int = 5
    complement: bool = True
    zeros: str = "show"  # show | hide
    method: str = "suppress"  # suppress | round
    round_to: int = 5  # rounding: nearest multiple, counts <= round_floor shown as 0
    round_floor: int = 7

    def is_small(self, value: float | None) -> bool:
        """A count the threshold forbids (a zero only when zeros are hidden)."""
        if value is None:
            return False
        return value < self.min_count and (value > 0 or self.zeros == "hide")


def rules_from(section: Mapping[str, Any]) -> DisclosureRules:
    """The rules of config `disclosure` (a mapping); ValueError on an unknown choice."""
    rules = DisclosureRules(
        min_count=int(section["min_count"]),
        complement=bool(section["complement"]),
        zeros=str(section["zeros"]),
        method=str(section["method"]),
        round_to=int(section["round_to"]),
        round_floor=int(section["round_floor"]),
    )
    for key, value, allowed in (
        ("zeros", rules.zeros, ("show", "hide")),
        ("method", rules.method, ("suppress", "round")),
    ):
        if value not in allowed:
            raise ValueError(f"disclosure.{key} = {value!r}: expected one of {list(allowed)}")
    return rules


@dataclass(frozen=True)
class Link:
    """A count cell this table shares with another published table (the same persons):
    `cells(this, other)` gives (this table's cell, the other's cell) pairs."""

    other: str
    cells: Callable[[pl.DataFrame, pl.DataFrame], list[tuple[CellRef, CellRef]]]


@dataclass(frozen=True)
class Follow:
    """Values of this table computed from another table's cells (a model fitted on them):
    `rows(this, other)` gives (this row, the other's cell) pairs; when that cell is hidden
    there, `columns` of the row are hidden here. A pair may name this table's cell instead
    of a row (a wide table of values, each computed from its own cells): that cell only."""

    other: str
    rows: Callable[[pl.DataFrame, pl.DataFrame], list[tuple[int | CellRef, CellRef]]]
    columns: tuple[str, ...] = ()


@dataclass(frozen=True)
class TableSpec:
    """One publishable file: which columns are counts of persons (or spells), which are
    derived from them, which are statistics of person values, and its relations.

    counts: count columns. complements: (count, n) pairs; with the complement rule a shown
    pair protects n - count too. implied: percent or share column -> (n column, scale):
    the count it implies with its n (round(value x n / scale)). derived: column -> the
    count or implied columns of the same row it is computed from (hidden with any).
    derived_over: column -> (count columns, group keys): computed from the counts of every
    row of its group (a difference between treated and controls), hidden with any of them.
    stats: column -> its n column (a mean, median, SD ... of person values; shown only
    when n is shown and >= the threshold). text: printed "n (percent)" columns.
    relations: frame -> total = sum(parts) relations over cells (margins, nested
    populations, cumulative windows). implied_cells: frame -> (share cell, its n cell,
    scale) where only some rows hold a share (a table of several statistics). derived_cells:
    frame -> (cell, the cells it is computed from, in any row), in order: a cell may be
    computed from one listed before it (a rate from spell-days, a cumulative share from
    every band before). links: cells shared with other tables. flag: a
    bool column set where the gate hid something in the row. describes: one line for
    the manifest. source: where the stage writes it ("results" or "outputs").
    """

    file: str
    describes: str
    keys: tuple[str, ...] = ()
    counts: tuple[str, ...] = ()
    complements: tuple[tuple[str, str], ...] = ()
    implied: Mapping[str, tuple[str, float]] = field(default_factory=dict)
    derived: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    derived_over: Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]] = field(
        default_factory=dict
    )
    stats: Mapping[str, str] = field(default_factory=dict)
    text: tuple[str, ...] = ()
    relations: Callable[[pl.DataFrame], list[Relation]] | None = None
    implied_cells: Callable[[pl.DataFrame], list[tuple[CellRef, CellRef, float]]] | None = None
    derived_cells: Callable[[pl.DataFrame], list[tuple[CellRef, list[CellRef]]]] | None = None
    links: tuple[Link, ...] = ()
    follows: tuple[Follow, ...] = ()
    flag: str | None = None
    source: str = "results"

    def text_columns(self, columns: Sequence[str]) -> list[str]:
        """The printed "n (percent)" columns among `columns`."""
        if self.text == ALL_BUT_KEYS:
            return [c for c in columns if c not in self.keys]
        return [c for c in self.text if c in columns]

    def implied_cells_of(self, frame: pl.DataFrame) -> list[tuple[CellRef, CellRef, float]]:
        """(share cell, its n cell, scale) of `frame` by `implied_cells`; none without it."""
        return self.implied_cells(frame) if self.implied_cells else []

    def derived_cells_of(self, frame: pl.DataFrame) -> list[tuple[CellRef, list[CellRef]]]:
        """(cell, the cells it is computed from) of `frame` by `derived_cells`; none without."""
        return self.derived_cells(frame) if self.derived_cells else []


def number(text: str | None) -> float | None:
    """A text cell as a number; None when empty or not a number (".." too)."""
    if text is None or text == "":
        return None
    try:
        return float(text)
    except ValueError:
        return None


def row_groups(frame: pl.DataFrame, keys: Sequence[str]) -> dict[tuple, list[int]]:
    """Row indices per combination of `keys`, in row order (no keys: one group of all)."""
    if not keys:
        return {(): list(range(frame.height))}
    out: dict[tuple, list[int]] = {}
    for row, values in enumerate(frame.select(keys).iter_rows()):
        out.setdefault(values, []).append(row)
    return out


def is_shown(text: str | None) -> bool:
    """A cell with a value: not empty (not applicable, or hidden upstream) and not ".."."""
    return text not in (None, "", HIDDEN_TEXT)


def text_count(cell: str | None) -> int | None:
    """The count a printed cell shows ("1 227 (61)**" -> 1227); None when hidden or empty."""
    if cell is None:
        return None
    found = TEXT_COUNT.match(cell)
    if not found:
        return None
    return int(re.sub(r"\D", "", found.group(1)))


def shows_share(cell: str | None) -> bool:
    """A printed "n (percent)" cell that shows its percent."""
    return is_shown(cell) and "(" in cell  # type: ignore[operator]


def shows_value(cell: str | None, printed: bool) -> bool:
    """Whether a cell still shows a value derived from others: a printed "n (percent)"
    cell its percent (its n is a count of its own), any other cell anything."""
    return shows_share(cell) if printed else is_shown(cell)


def count_only(cell: str) -> str:
    """A printed cell without its percent (and the stars of its test): "1 227 (61)**" ->
    "1 227"."""
    return cell.split("(", 1)[0].rstrip()
