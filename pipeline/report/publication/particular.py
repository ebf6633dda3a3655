"""Relations, links and computed cells particular to one table or one pair of tables
(the generic builders are in `relations`): which income cells a figure repeats, which
model a row's estimates come from, the life table's and the region SMDs' computed cells.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import polars as pl

from pipeline.report.income_tables import ANY_INCOME, B6_INCOME, REGAINED, SERIES
from pipeline.report.labels import AGE_BLOCK, ALL, ALL_LENGTHS, GROUP_LABEL, MEAN_AGE, TOTAL
from pipeline.report.publication.relations import contains, same_rows, steps
from pipeline.report.publication.spec import (
    CellRef,
    Known,
    Relation,
    Unprinted,
    number,
    row_groups,
    text_count,
)

LIFE_TABLE_RATES = ("rate_per_1000", "ci_low", "ci_high")


def figure_link(
    column: str, other_column: str
) -> Callable[[pl.DataFrame, pl.DataFrame], list[tuple[CellRef, CellRef]]]:
    """Figures 13-14's cells and the income tables' long cells they repeat: figure13 is B4,
    figure14 B5; the series "Återfår tidigare inkomst" is B4's REGAINED block, the others
    (any, none = n - any) the ANY_INCOME block; at the last window the long table holds."""
    series_block = {
        SERIES["any"]: ANY_INCOME,
        SERIES["none"]: ANY_INCOME,
        SERIES["regained"]: REGAINED,
    }

    def cells(this: pl.DataFrame, other: pl.DataFrame) -> list[tuple[CellRef, CellRef]]:
        windows = other.filter(pl.col("row").str.contains(r"^<\d+ mån$"))["row"].unique().to_list()
        last = max(windows, key=lambda w: int(re.sub(r"\D", "", w)), default=None)
        index = same_rows(other, ("table", "block", "row", "length_class", "group"))
        out = []
        for row, r in enumerate(this.iter_rows(named=True)):
            table = "B4" if r["figure"] == "figure13" else "B5"
            key = (table, series_block.get(r["series"]), last, r["length_class"], r["group"])
            if key in index:
                out.append(((row, column), (index[key], other_column)))
        return out

    return cells


def same_model(this: pl.DataFrame, other: pl.DataFrame) -> list[tuple[int, CellRef]]:
    """(row of a model's estimates, a count or n cell of the income tables fitted by that
    model): every cell whose `model` is the row's, both groups and all rows of its block
    (the model's n less one group's n is the other's)."""
    cells: dict[str, list[int]] = {}
    for row, model in enumerate(other["model"].to_list()):
        if model:
            cells.setdefault(model, []).append(row)
    return [
        (row, (cell, column))
        for row, model in enumerate(this["model"].to_list())
        for cell in cells.get(model, [])
        for column in ("count", "n")
    ]


def figure_ref_link(this: pl.DataFrame, other: pl.DataFrame) -> list[tuple[CellRef, CellRef]]:
    """Figures 13-14's `n_ref` (persons with income before, both figures) and B4's n."""
    index = same_rows(other, ("table", "block", "row", "length_class", "group"))
    out = []
    for row, r in enumerate(this.iter_rows(named=True)):
        key = ("B4", ANY_INCOME, "n", r["length_class"], r["group"])
        if key in index:
            out.append(((row, "n_ref"), (index[key], "n")))
    return out


def b6_total_link(this: pl.DataFrame, other: pl.DataFrame) -> list[tuple[CellRef, CellRef]]:
    """Table B6's age block totals and the n of B4 (with income before) or B5 (without)
    they repeat: hidden there, hidden here. Only the age block counts everyone; another
    block's total lacks the persons without a value (`b6_blocks_of_everyone`)."""
    index = same_rows(other, ("table", "block", "row", "length_class", "group"))
    table_of = {B6_INCOME[0]: "B5", B6_INCOME[1]: "B4"}
    out = []
    for row, r in enumerate(this.iter_rows(named=True)):
        if r["block"] != AGE_BLOCK:
            continue
        key = (table_of.get(r["income"]), ANY_INCOME, "n", ALL_LENGTHS, r["group"])
        if key in index:
            out.append(((row, "block_total"), (index[key], "n")))
    return out


def region_years(
    column: str, survey_years_only: bool
) -> Callable[[pl.DataFrame, pl.DataFrame], list[tuple[int, CellRef]]]:
    """(row of a region's total, each year's `column` cell of that region in
    `registered_vs_reported`, only the years with a survey count if `survey_years_only`):
    a region's totals are sums over its years."""

    def rows(this: pl.DataFrame, other: pl.DataFrame) -> list[tuple[int, CellRef]]:
        surveyed = other["antal_insatser"].to_list()
        years: dict[str, list[int]] = {}
        for row, region in enumerate(other["region"].to_list()):
            if not survey_years_only or surveyed[row] not in (None, ""):
                years.setdefault(region, []).append(row)
        return [
            (row, (cell, column))
            for row, region in enumerate(this["region"].to_list())
            for cell in years.get(region, [])
        ]

    return rows


def design_deciles(this: pl.DataFrame, other: pl.DataFrame) -> list[tuple[int, CellRef]]:
    """(row of a design's rank test, each decile count of that design): the chi-square of
    the deciles, with the shown ones, gives a hidden one back."""
    rows = row_groups(other, ("design",))
    return [
        (row, (cell, "observed"))
        for row, design in enumerate(this["design"].to_list())
        for cell in rows.get((design,), [])
    ]


def deciles_add_up(frame: pl.DataFrame) -> list[Relation]:
    """The length-rank deciles of a design: their observed counts add up to ten times the
    expected count (the number of sets), which the table prints in another form."""
    out: list[Relation] = []
    for rows in row_groups(frame, ("design",)).values():
        expected = number(frame["expected"][rows[0]])
        if expected is not None:
            out.append((Known(round(10 * expected)), [(r, "observed") for r in rows]))
    return out


def life_table_cells(frame: pl.DataFrame) -> list[tuple[CellRef, list[CellRef]]]:
    """The GC001 life table's computed cells and what each is computed from: spell-days of a
    band from the pooled (`Alla`) band's counts and the next band's start (the spells still
    at risk); a rate and its CI from the level's events and the spell-days; the cumulative
    share from every band up to it (pooled counts and the level's events)."""
    levels = frame["care_level"].to_list()
    pooled = {number(frame["band"][r]): r for r in range(frame.height) if levels[r] == ALL}
    bands = sorted(b for b in pooled if b is not None)
    out: list[tuple[CellRef, list[CellRef]]] = []
    for row in range(frame.height):
        band = number(frame["band"][row])
        base = pooled[band]
        after = [(pooled[b], "n_at_start") for b in bands if b == band + 1]  # type: ignore[operator]
        counts = [(base, c) for c in ("n_at_start", "events", "censored")]
        out.append(((row, "spell_days"), [*counts, *after]))
        out += [((row, c), [(row, "events"), (row, "spell_days")]) for c in LIFE_TABLE_RATES]
    for row in range(frame.height):
        band, level = number(frame["band"][row]), levels[row]
        before = [
            r
            for r in range(frame.height)
            if levels[r] == level and (number(frame["band"][r]) or 0) <= (band or 0)
        ]
        pooled_before = [pooled[number(frame["band"][r])] for r in before]
        sources = [(r, "events") for r in before] + [
            (p, c) for p in pooled_before for c in ("n_at_start", "events", "censored")
        ]
        out.append(((row, "cumulative_percent"), sources))
    return out


def region_smd_cells(this: pl.DataFrame, other: pl.DataFrame) -> list[tuple[CellRef, CellRef]]:
    """(an SMD of `table2_by_region_smd`, a cell of `table2_by_region` it is computed from):
    a category's SMD from the region's and the pooled cell and block totals; the mean age's
    from the age block's totals."""
    index = same_rows(other, ("block", "category"))
    regions = [c for c in this.columns if c not in ("block", "category")]
    out: list[tuple[CellRef, CellRef]] = []
    for row, (block, category) in enumerate(this.select("block", "category").iter_rows()):
        if category == MEAN_AGE:
            rows = [index[(AGE_BLOCK, TOTAL)]]
        else:
            rows = [index[(block, category)], index[(block, TOTAL)]]
        out += [((row, c), (r, col)) for c in regions for r in rows for col in (c, ALL)]
    return out


def prior_share_cells(frame: pl.DataFrame) -> list[tuple[CellRef, CellRef, float]]:
    """(share, its n, 100) for the "share_any" rows of prior_sick_days: a percent of persons
    with any sick days implies a count of them."""
    return [
        ((row, side), (row, f"n_{side}"), 100)
        for row, statistic in enumerate(frame["statistic"].to_list())
        if statistic == "share_any"
        for side in ("treated", "control")
    ]


def prior_derived_cells(frame: pl.DataFrame) -> list[tuple[CellRef, list[CellRef]]]:
    """prior_sick_days' CIs from their estimate, the difference and its CI from both groups'."""
    out: list[tuple[CellRef, list[CellRef]]] = []
    for row in range(frame.height):
        for side in ("treated", "control"):
            out += [((row, f"{side}_ci_{end}"), [(row, side)]) for end in ("low", "high")]
        both: list[CellRef] = [(row, "treated"), (row, "control")]
        out += [((row, c), both) for c in ("difference", "diff_ci_low", "diff_ci_high")]
    return out


# --- the cohort's totals, repeated across tables ---------------------------------------------

PERSON_ROW_STEP = "person_row"  # the attrition step of Table 2/B3's unit, one spell a person
SPELLS_OF = {GROUP_LABEL[True]: "n_spells_treated", GROUP_LABEL[False]: "n_spells_control"}
GROUP_KEYS = ("group",)


def _person_row_index(flow: pl.DataFrame) -> int | None:
    """Row of the `person_row` step in the attrition flow (None without one, or first)."""
    names = flow["step"].to_list()
    at = names.index(PERSON_ROW_STEP) if PERSON_ROW_STEP in names else 0
    return at or None


def person_row_step(frame: pl.DataFrame) -> list[Relation]:
    """Attrition at the `person_row` step, which keeps one spell of every person: its person
    counts are the step before's, and each of its spell counts its person count. The spells
    it drops are the extra spells of persons with several, not a count of persons: the step
    before shows them as its spells minus its persons, so they are not a relation to protect
    (`steps` relations ending at this step are left out)."""
    r = _person_row_index(frame)
    if r is None:
        return []
    out: list[Relation] = []
    for s in ("", "_treated", "_control"):
        out.append(((r - 1, f"n_persons{s}"), [(r, f"n_persons{s}")]))
        out.append(((r, f"n_spells{s}"), [(r, f"n_persons{s}")]))
    return out


def attrition_relations(counts: tuple[str, ...]) -> Callable[[pl.DataFrame], list[Relation]]:
    """The attrition flow: `steps` of every count (each only falls) up to the step before
    `person_row`, then `person_row_step`."""
    chain = steps(counts)

    def build(frame: pl.DataFrame) -> list[Relation]:
        last = _person_row_index(frame)
        kept = [rel for rel in chain(frame) if rel[1][0][0] != last]
        return kept + person_row_step(frame)

    return build


def attrition_link(
    column: str, keys: tuple[str, ...], cells: dict[tuple, tuple[str, str]]
) -> Callable[[pl.DataFrame, pl.DataFrame], list[tuple[CellRef, CellRef]]]:
    """This table's `column` cells that repeat a count of the attrition flow: a row whose
    `keys` are in `cells` is (step, attrition column) there, the step "cohort" being the
    one before `person_row` (every spell of the study population)."""

    def link(this: pl.DataFrame, other: pl.DataFrame) -> list[tuple[CellRef, CellRef]]:
        unit = _person_row_index(other)
        if unit is None:
            return []
        at = {PERSON_ROW_STEP: unit, "cohort": unit - 1}
        return [
            ((row, column), (at[cells[values][0]], cells[values][1]))
            for row, values in enumerate(this.select(keys).iter_rows())
            if values in cells
        ]

    return link


def person_rows_link(column: str, keys: tuple[str, ...], prefix: tuple = (), suffix: tuple = ()):
    """`attrition_link` of each group's person rows (Table 2/B3's unit): a row whose keys
    are (*prefix, group, *suffix)."""
    cells = {(*prefix, g, *suffix): (PERSON_ROW_STEP, c) for g, c in SPELLS_OF.items()}
    return attrition_link(column, keys, cells)


def _block_totals(long: pl.DataFrame) -> tuple[list[tuple], dict[tuple, int]]:
    """Table 2/B3 long: its (block, category, group, ownership) rows, and the row of each
    block's total per (block, group, ownership)."""
    labels = long.select("block", "category", "group", "ownership").rows()
    return labels, {(b, g, o): r for r, (b, c, g, o) in enumerate(labels) if c == TOTAL}


def _age_block_holds(frame: pl.DataFrame, totals: dict[tuple, int], column: str) -> list[Relation]:
    """`totals` maps (block, *column keys) to the row of the block's total: per column keys,
    the age block's total (everyone) = each other block's + its persons without a value."""
    out: list[Relation] = []
    for (block, *rest), r in totals.items():
        ref = totals.get((AGE_BLOCK, *rest))
        if block != AGE_BLOCK and ref is not None:
            out += contains(frame, ref, r, (column,))
    return out


def blocks_of_everyone(frame: pl.DataFrame) -> list[Relation]:
    """Table 2/B3: a block's total counts the persons with a value; with those without one
    (never printed) it is the age block's total, which counts everyone (every cohort age
    falls in a band). Per group and ownership."""
    _labels, total = _block_totals(frame)
    return _age_block_holds(frame, total, "n")


def b6_blocks_of_everyone(frame: pl.DataFrame) -> list[Relation]:
    """Table B6: a block's total counts the persons with a value; with those without one
    (never printed) it is the age block's, which counts everyone. Per income and group."""
    first: dict[tuple, int] = {}
    for row, key in enumerate(frame.select("block", "income", "group").rows()):
        first.setdefault(key, row)
    return _age_block_holds(frame, first, "block_total")


def share_of_block_total(frame: pl.DataFrame) -> list[tuple[CellRef, list[CellRef]]]:
    """Table 2/B3 long: a category's percent is of its block's total in its column (group,
    ownership), which it gives back with the category's n: (percent, [n, total n])."""
    labels, total = _block_totals(frame)
    return [
        ((r, "percent"), [(r, "n"), (total[(b, g, o)], "n")])
        for r, (b, c, g, o) in enumerate(labels)
        if c != TOTAL and (b, g, o) in total
    ]


def printed_block_total(this: pl.DataFrame, other: pl.DataFrame) -> list[tuple[CellRef, CellRef]]:
    """Table 2/B3 as printed: each "n (percent)" cell of a category and the long table's
    block total in its column ("Insats Privat": group, ownership) that its percent is of."""
    _labels, total = _block_totals(other)
    out = []
    for column in this.columns:
        head = tuple(column.split(" ", 1))
        for r, (block, category) in enumerate(this.select("block", "category").rows()):
            if category != TOTAL and (block, *head) in total:
                out.append(((r, column), (total[(block, *head)], "n")))
    return out


def _printed_totals(frame: pl.DataFrame) -> tuple[list[tuple], dict[str, int], list[str]]:
    """A printed Table 2-like table: its (block, category) rows, each block's total row
    and its printed columns."""
    labels = frame.select("block", "category").rows()
    total = {b: r for r, (b, c) in enumerate(labels) if c == TOTAL}
    return labels, total, [c for c in frame.columns if c not in ("block", "category")]


def printed_blocks_of_everyone(frame: pl.DataFrame) -> list[Relation]:
    """`blocks_of_everyone` of a printed table with its block totals (Table 2 by region):
    per column, the age block's total = a block's total + its persons without a value."""
    _labels, total, columns = _printed_totals(frame)
    everyone = total.get(AGE_BLOCK)
    if everyone is None:
        return []
    out: list[Relation] = []
    for block, r in total.items():
        if block == AGE_BLOCK:
            continue
        for column in columns:
            a, b = text_count(frame[column][everyone]), text_count(frame[column][r])
            rest = Unprinted(None if None in (a, b) else a - b)
            out.append(((everyone, column), [(r, column), rest]))
    return out


def printed_share_of_block_total(frame: pl.DataFrame) -> list[tuple[CellRef, list[CellRef]]]:
    """A printed table with its block totals: an "n (percent)" cell's percent is of its
    block's total in its column, which it gives back with the n."""
    labels, total, columns = _printed_totals(frame)
    return [
        ((r, column), [(total[b], column)])
        for r, (b, c) in enumerate(labels)
        if c != TOTAL and b in total
        for column in columns
    ]
