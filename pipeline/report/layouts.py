"""The publication's layouts of Table 2, B3, B4, B5, Table 3 and B6, built from the long
tables the gate published (cells read as text, withheld cells ".."): column groups as the
report prints them, each block's label once, counts and percents in Swedish format.

Nothing is computed but the printed form of a stored cell: "n (pct)" with the percent
rounded to a whole number (half away from zero, analysis-spec.md §0).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import polars as pl

from pipeline.report import words
from pipeline.report.labels import ALL_LENGTHS, GROUP_LABEL, LENGTH_CLASSES, TOTAL
from pipeline.report.numbers import cell, number_of, sv

HIDDEN = words.HIDDEN_CELL
TREATED, CONTROL = GROUP_LABEL[True], GROUP_LABEL[False]
B3_NO_TOTAL = ("Födelseland", "Civiltillstånd")  # blocks B3 prints without a total row
LENGTH_HEADERS = {
    "<2 år": "Sjukperiod <2 år",
    "2+ år": "Sjukperiod 2+ år",
    ALL_LENGTHS: "Alla sjukperioder",
}


@dataclass(frozen=True)
class Row:
    """One printed row: its label, its cells (one per body column) and whether it heads a block."""

    label: str
    cells: tuple[str, ...]
    block: bool = False
    published: tuple[str, ...] = ()  # the publication's printed value per cell, when shown
    values: tuple[float | None, ...] = ()  # the cells as numbers, for the workbook
    key: tuple[str, str] | None = None  # (block, row) as stored: where published values match


@dataclass(frozen=True)
class Layout:
    """A table as the publication prints it: header rows of (text, column span), body rows,
    notes under the table."""

    header: tuple[tuple[tuple[str, int], ...], ...]
    rows: tuple[Row, ...]
    notes: tuple[str, ...] = field(default_factory=tuple)
    corner: str = ""  # the header over the row labels
    kinds: tuple[str, ...] = ()  # each body column's kind (`words.COLUMNS`), when known
    column_keys: tuple[str, ...] = ()  # each body column as the published values name it

    @property
    def width(self) -> int:
        """Number of body columns (without the label column)."""
        return sum(span for _, span in self.header[-1])


def whole(percent: str) -> str:
    """A stored percent as the publication prints it: a whole number, half away from zero."""
    value = float(percent)
    return sv(math.copysign(math.floor(abs(value) + 0.5), value))


def count_cell(n: str | None, percent: str | None = None, stars: str = "") -> str:
    """A count with its percent in brackets: "48 741 (70)"; ".." for a withheld count, the
    count alone when its percent is withheld or not given."""
    if n in (None, "", HIDDEN):
        return HIDDEN if n == HIDDEN else ""
    out = sv(float(n))
    if percent not in (None, "", HIDDEN) and not math.isnan(float(percent)):
        out += f" ({whole(percent)})"
    return out + stars


def n_text(n: str | None, style: str = "(n = {})") -> str:
    """A group size as printed in a header or block row: "(n = 20 242)", ".." when withheld."""
    if n in (None, "", HIDDEN):
        return style.format(HIDDEN)
    return style.format(sv(float(n)))


def _lookup(frame: pl.DataFrame, keys: Sequence[str]) -> dict[tuple[str, ...], dict[str, str]]:
    """The rows of a text table by their key columns."""
    return {tuple(r[k] for k in keys): r for r in frame.iter_rows(named=True)}


def _category_row(
    cells: Mapping[tuple[str, ...], Mapping[str, str]],
    block: str,
    category: str,
    columns: Sequence[tuple[str, ...]],
) -> Row:
    """A category's printed row: "n (pct)" in each column (`cells` by (block, category,
    *column)), keyed (block, category) for the published values."""
    found = [cells.get((block, category, *c), {}) for c in columns]
    printed = tuple(count_cell(r.get("n"), r.get("percent")) for r in found)
    return Row(category, printed, key=(block, category))


def _blocks(frame: pl.DataFrame, category: str = "category") -> list[tuple[str, list[str]]]:
    """Blocks in table order with their categories in order (totals excluded)."""
    order: dict[str, list[str]] = {}
    for block, cat in frame.select("block", category).iter_rows():
        cats = order.setdefault(block, [])
        if cat != TOTAL and cat not in cats:
            cats.append(cat)
    return list(order.items())


def table2(long: pl.DataFrame, block_names: Mapping[str, str]) -> Layout:
    """Table 2: blocks of categories, "n (pct)" per group; no total rows (as printed)."""
    cells = _lookup(long, ("block", "category", "group"))
    groups = [(TREATED, "Koordineringsinsatser"), (CONTROL, "Kontroller")]
    header = (
        tuple(
            (f"{name} {n_text(cells.get(('Kön', TOTAL, g), {}).get('n'))}", 1) for g, name in groups
        ),
        tuple(("Antal (%)", 1) for _ in groups),
    )
    rows: list[Row] = []
    for block, cats in _blocks(long):
        rows.append(Row(block_names.get(block, block), ("",) * len(groups), block=True))
        for cat in cats:
            rows.append(_category_row(cells, block, cat, [(g,) for g, _ in groups]))
    return Layout(header, tuple(rows), column_keys=tuple(g for g, _ in groups))


def table_b3(
    long: pl.DataFrame, age: pl.DataFrame, ownerships: Sequence[str], block_names: Mapping[str, str]
) -> Layout:
    """Table B3: treated and controls by ownership and in total; every block with its total
    row, the age block with the mean (median) age; controls of unknown ownership are in the
    controls' total only (their count goes in a note)."""
    cells = _lookup(long, ("block", "category", "group", "ownership"))
    ages = _lookup(age, ("group", "ownership"))
    columns = [(g, o) for g in (TREATED, CONTROL) for o in [*ownerships, TOTAL]]
    size = {c: cells.get(("Kön", TOTAL, *c), {}).get("n") for c in columns}
    top = (
        (f"Koordineringsinsats {n_text(size[(TREATED, TOTAL)])}", len(ownerships) + 1),
        (f"Kontroller {n_text(size[(CONTROL, TOTAL)])}", len(ownerships) + 1),
    )
    totals = {TREATED: "Totalt insats", CONTROL: "Totalt kontroller"}
    second = tuple(
        (f"{o} {n_text(size[(g, o)])}" if o != TOTAL else totals[g], 1) for g, o in columns
    )
    rows: list[Row] = []
    for block, cats in _blocks(long):
        rows.append(Row(block_names.get(block, block), ("",) * len(columns), block=True))
        for cat in [*cats, TOTAL] if block not in B3_NO_TOTAL else cats:
            rows.append(_category_row(cells, block, cat, columns))
        if block == "Ålder" and ages:
            mean_age = "Medelvärde (median) ålder"
            printed = tuple(_age(ages.get(c)) for c in columns)
            rows.append(Row(mean_age, printed, key=(block, mean_age)))
    unknown = cells.get(("Kön", TOTAL, CONTROL, "Okänd"), {}).get("n")
    note = (
        "Kontroller utan kontakt med primärvården inom fönstret har okänd regi: "
        f"{n_text(unknown, '{}')} personer. De ingår i kolumnen Totalt kontroller men inte "
        "i någon regikolumn (analysis-spec.md §1.4, §10 punkt 31)."
    )
    keys = tuple(f"{g} {o}" for g, o in columns)
    return Layout((top, second), tuple(rows), (note,), column_keys=keys)


def _age(row: Mapping[str, str] | None) -> str:
    """Mean (median) age as printed: "45 (45)"."""
    if not row or row.get("mean_age") in (None, "", HIDDEN):
        return HIDDEN if row else ""
    median = row.get("median_age")
    tail = f" ({whole(median)})" if median not in (None, "", HIDDEN) else ""
    return whole(row["mean_age"]) + tail


def _income_columns() -> list[tuple[str, str]]:
    """(length class, group) columns of B4, B5 and Table 3 in printed order."""
    return [(length, g) for length in LENGTH_CLASSES for g in (TREATED, CONTROL)]


def _length_header() -> tuple[tuple[str, int], ...]:
    return tuple((LENGTH_HEADERS[length], 2) for length in LENGTH_CLASSES)


def income_table(long: pl.DataFrame, table: str, stars: bool) -> Layout:
    """B4, B5 or Table 3 (`table` as stored: "B4", "B5", "Tabell 3") as printed: B4 with
    "(n = …)" in each block's row, B5 with the n in the header, Table 3 with "n = …"; then
    the outcome rows "n (pct)", stars only when `stars`. An outcome whose own n differs from
    its block's (Table 3's regained income, §10 item 14) gets its own n row above it."""
    rows_of = long.filter(pl.col("table") == table)
    cells = _lookup(rows_of, ("block", "row", "length_class", "group"))
    columns = _income_columns()
    groups = [g for _, g in columns]
    header: list[tuple[tuple[str, int], ...]] = [_length_header()]
    body: list[Row] = []
    for block in [b for b, _ in _blocks(rows_of, "row")]:
        ns = [cells.get((block, "n", *c), {}).get("n") for c in columns]
        if table == "B5":
            header.append(tuple((f"{g} {n_text(n)}", 1) for g, n in zip(groups, ns, strict=True)))
            body.append(Row(block, ("Antal (%)",) * len(columns), block=True))
        else:
            style = "n = {}" if table == "Tabell 3" else "(n = {})"
            body.append(Row(block, tuple(n_text(n, style) for n in ns), True, key=(block, "n")))
        labels = dict.fromkeys(rows_of.filter(pl.col("block") == block)["row"])
        for label in (r for r in labels if r != "n"):
            row = [cells.get((block, label, *c), {}) for c in columns]
            own = [r.get("n") for r in row]
            if own != ns:
                body.append(Row(f"{label}, n", tuple(n_text(n, "n = {}") for n in own)))
            printed = [
                count_cell(
                    r.get("count"), r.get("percent"), (r.get("stars") or "") if stars else ""
                )
                for r in row
            ]
            body.append(Row(label, tuple(printed), key=(block, label)))
    if table == "Tabell 3":
        header.append(tuple((f"{g} Antal (%)", 1) for g in groups))
    elif table != "B5":
        header += [tuple((g, 1) for g in groups), tuple(("Antal (%)", 1) for _ in groups)]
    keys = tuple(f"{length} {g}" for length, g in columns)
    return Layout(tuple(header), tuple(body), column_keys=keys)


def table_b6(long: pl.DataFrame, order: Sequence[tuple[str, Sequence[str]]]) -> Layout:
    """Table B6: without vs with income before × treated, control; "n (pct)" per category,
    blocks and categories in `order` (the printed order; others follow as stored)."""
    incomes = ("Utan inkomst före", "Någon inkomst före")
    printed = {
        "Utan inkomst före": "Utan arbetsinkomst före sjukperiod",
        "Någon inkomst före": "Någon inkomst före sjukperiod",
    }
    columns = [(i, g) for i in incomes for g in (TREATED, CONTROL)]
    cells = _lookup(long, ("block", "category", "income", "group"))
    header = (
        tuple((printed[i], 2) for i in incomes),
        tuple((g, 1) for _, g in columns),
        tuple(("Antal (%)", 1) for _ in columns),
    )
    stored = dict(_blocks(long))
    rows: list[Row] = []
    for block, cats in [*order, *((b, []) for b in stored if b not in dict(order))]:
        if block not in stored:
            continue
        rows.append(Row(block, ("",) * len(columns), block=True))
        for cat in [*cats, *(c for c in stored[block] if c not in cats)]:
            rows.append(_category_row(cells, block, cat, columns))
    return Layout(header, tuple(rows), column_keys=tuple(f"{i} {g}" for i, g in columns))


def generic(
    frame: pl.DataFrame,
    labels: Mapping[str, str] | None = None,
    hide: Sequence[str] = ("suppressed",),
) -> Layout:
    """Any other table: one header row of Swedish column names (`words.header`), cells by
    the column's kind (`numbers.cell`, the delivery's codes by `labels`); the `suppressed`
    flag is not shown (withheld cells read "..")."""
    shown = [c for c in frame.columns if c not in hide]
    kinds = [words.kind(c) for c in shown]
    body = list(zip(shown[1:], kinds[1:], strict=True))
    rows = tuple(
        Row(
            cell(r[shown[0]], kinds[0], labels),
            tuple(cell(r[c], k, labels) for c, k in body),
            values=tuple(number_of(r[c], k) for c, k in body),
        )
        for r in frame.select(pl.col(shown).cast(pl.String)).iter_rows(named=True)
    )
    header = (tuple((words.header(c), 1) for c in shown[1:]),)
    return Layout(header, rows, corner=words.header(shown[0]), kinds=tuple(kinds[1:]))


def with_published(layout: Layout, printed: Mapping[tuple[str, str, str], str]) -> Layout:
    """`layout` with the publication's printed value beside each of its cells that has one
    (`printed` by (block, row, column), `published.printed_cells`)."""
    rows = []
    for row in layout.rows:
        if row.key is None:
            rows.append(row)
            continue
        shown = tuple(printed.get((*row.key, c), "") for c in layout.column_keys)
        rows.append(dataclasses.replace(row, published=shown if any(shown) else ()))
    return dataclasses.replace(layout, rows=tuple(rows))
