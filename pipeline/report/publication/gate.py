"""The publication gate: protect a table's small counts against everything a reader can
combine, then refuse it if any count is still exposed (docs/methods.md, "Disclosure
control").

`protect` hides cells: primary (a count 0 < n < threshold), complement (n - count small
while both are shown), cells another published table hides (links), then secondary
suppression over every relation of the table at once (`stats.disclosure`: first until no
small cell is determined, then until each one's feasible range, counts being
non-negative, is at least the threshold wide), and with
them every value derived from a hidden count and every person statistic of a small or
hidden n. `violations` re-reads a protected table as an attacker would and lists each
count it still shows or implies, by file, column and row; `publish` refuses on any.
Tables arrive as text columns (as the stages wrote them), so shown values keep their
bytes; hidden values become empty (or ".." in printed text cells).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import polars as pl

from pipeline.core.errors import PipelineError
from pipeline.report.publication.cells import Cells, build_cells
from pipeline.report.publication.rounding import rounded_table
from pipeline.report.publication.spec import (
    HIDDEN_TEXT,
    DisclosureRules,
    Known,
    TableSpec,
    Unprinted,
    count_only,
    is_shown,
    number,
    row_groups,
    shows_value,
    text_count,
)
from pipeline.stats.disclosure import UnprotectableError, suppressed_cells, widened_cells

# why a printed cell is hidden; "by_stage": empty on arrival in a row the stage flagged,
# "not_applicable": empty on arrival otherwise (nothing to show, e.g. spells of a row step)
REASONS = ("primary", "complement", "secondary", "linked", "by_stage", "not_applicable")


class DisclosureError(PipelineError):
    """A table would show or imply a count the rules forbid (the CLI prints it and stops)."""


def _link_state(
    frame: pl.DataFrame, spec: TableSpec, cells: Cells, published: Mapping[str, pl.DataFrame]
) -> tuple[list[bool], list[bool]]:
    """Per cell: hidden by a table it shares with (forced) / shown there (not a complement)."""
    forced = [False] * len(cells.keys)
    shown = [False] * len(cells.keys)
    for link in spec.links:
        other = published.get(link.other)  # absent: this table protected alone
        if other is None:
            continue
        for mine, (row, column) in link.cells(frame, other):
            i = cells.ref(mine)
            if i is None:
                continue
            text = other[column][row]
            hidden = text in (None, "", HIDDEN_TEXT)
            forced[i] |= hidden
            shown[i] |= not hidden
    return forced, shown


def _fill_from_links(
    frame: pl.DataFrame, spec: TableSpec, published: Mapping[str, pl.DataFrame]
) -> pl.DataFrame:
    """`frame` with a cell the stage left hidden or empty filled in from a table published
    before that shows the same cell: it is public already, and hidden here it would only
    look protected while the relations through it are not (the gate takes it as known)."""
    if not spec.links:
        return frame
    columns = {c: frame[c].to_list() for c in frame.columns}
    text_columns = spec.text_columns(frame.columns)
    for link in spec.links:
        other = published.get(link.other)
        if other is None:
            continue
        for (row, column), (other_row, other_column) in link.cells(frame, other):
            theirs = other[other_column][other_row]
            if columns[column][row] not in (None, "", HIDDEN_TEXT) or not is_shown(theirs):
                continue
            # only the same kind of value: a count for a count, a printed cell for one
            same_kind = (column in spec.counts and number(theirs) is not None) or (
                column in text_columns and text_count(theirs) is not None
            )
            if same_kind:
                columns[column][row] = theirs
    return pl.DataFrame(columns, schema={c: pl.String for c in frame.columns})


@dataclass(frozen=True)
class TableLog:
    """What the gate did to one file: count cells shown, hidden by reason, rounded,
    non-finite values emptied, and the other values hidden with the counts (derived
    values, statistics, estimates); grain: one published file."""

    file: str
    shown: int
    hidden: Mapping[str, int]
    rounded: int
    non_finite: int
    values_hidden: int = 0


def protect(
    frame: pl.DataFrame,
    spec: TableSpec,
    rules: DisclosureRules,
    published: Mapping[str, pl.DataFrame] | None = None,
) -> tuple[pl.DataFrame, TableLog]:
    """`frame` (text columns) with every forbidden count and what it implies emptied, and
    the log of what was hidden and why; grain: the table's rows."""
    published = published or {}
    frame, non_finite = _empty_non_finite(frame)
    frame = _fill_from_links(frame, spec, published)
    cells = build_cells(frame, spec, rules)
    if rules.method == "round":
        rounded_frame, changed = rounded_table(frame, spec, rules, cells.keys, cells.values)
        shown = sum(not isinstance(k, Unprinted) for k in cells.keys)
        return rounded_frame, TableLog(
            spec.file, shown, dict.fromkeys(REASONS, 0), changed, non_finite
        )
    linked_hidden, linked_shown = _link_state(frame, spec, cells, published)
    unprinted = [isinstance(k, Unprinted) for k in cells.keys]
    values = [rules.min_count if v is None else round(v) for v in cells.values]
    forced = [
        _forced(v, h, f, u, rules)
        for v, h, f, u in zip(
            cells.values, cells.arrived_hidden, linked_hidden, unprinted, strict=True
        )
    ]
    known = [isinstance(k, Known) for k in cells.keys]
    exempt = [
        u and not k and not rules.is_small(v)
        for u, k, v in zip(unprinted, known, cells.values, strict=True)
    ]
    linked_shown = [s or k for s, k in zip(linked_shown, known, strict=True)]
    sensitive = [rules.is_small(v) for v in cells.values]
    try:
        hidden = suppressed_cells(
            values, cells.relations, rules.min_count, forced, linked_shown, exempt
        )
        # a cell hidden by the stage (value unknown here) must not be known to be small
        bounded = [v is None and not u for v, u in zip(cells.values, unprinted, strict=True)]
        hidden = widened_cells(
            values, cells.relations, hidden, sensitive, rules.min_count, linked_shown, bounded
        )
    except UnprotectableError as err:
        raise DisclosureError(
            f"{spec.file}: {_describe(frame, spec, cells, err.cell)} {err.why}; "
            "its relations cannot protect it"
        ) from err
    flagged = set()
    if spec.flag and spec.flag in frame.columns:
        flagged = {r for r, v in enumerate(frame[spec.flag].to_list()) if v == "true"}
    reasons = _reasons(cells, hidden, linked_hidden, rules, flagged)
    followed = followed_hidden(frame, spec, published)
    frame = _apply(frame, spec, rules, cells, hidden, followed, flagged)
    counts = {reason: sum(r == reason for r in reasons.values()) for reason in REASONS}
    shown = sum(not h and not u for h, u in zip(hidden, unprinted, strict=True))
    derived = _hidden_values(frame, set(cells.index))
    return frame, TableLog(spec.file, shown, counts, 0, non_finite, derived)


def _describe(frame: pl.DataFrame, spec: TableSpec, cells: Cells, i: int) -> str:
    """A cell as a reader finds it: column and data row with its keys, or for a cell never
    printed (n - count, a drop between steps) the printed cells it follows from."""
    key = cells.keys[i]
    if isinstance(key, Unprinted):
        members = [cells.keys[m] for m in cells.complement_of.get(i, [])]
        shown = [
            _describe(frame, spec, cells, cells.ref(m))
            for m in members
            if not isinstance(m, Unprinted)
        ]  # type: ignore[arg-type]
        value = "unknown" if key.value is None else f"{key.value:g}"
        return f"the unprinted count ({value}) between {' and '.join(shown) or 'cells'}"
    row, column = key
    keys = ", ".join(f"{k}={frame[k][row]}" for k in spec.keys if k in frame.columns)
    return f"column '{column}', data row {row + 1} ({keys})"


def _hidden_values(frame: pl.DataFrame, count_cells: set) -> int:
    """How many cells of `frame` are hidden that are not counts: values derived from a
    hidden count, statistics of a small n, estimates computed from another table's cells."""
    return sum(
        1
        for column in frame.columns
        for row, text in enumerate(frame[column].to_list())
        if text == HIDDEN_TEXT and (row, column) not in count_cells
    )


def _forced(
    value: float | None, arrived_hidden: bool, linked: bool, unprinted: bool, rules: DisclosureRules
) -> bool:
    """Hidden whatever its count, and protected like a small one: hidden on arrival or in a
    table sharing it, a zero when zeros are hidden. Unprinted cells are not forced: a small
    one is primary (its members must protect it), a large one is exempt."""
    if unprinted:
        return False
    return arrived_hidden or linked or (value == 0 and rules.is_small(0))


def _reasons(
    cells: Cells,
    hidden: Sequence[bool],
    linked: Sequence[bool],
    rules: DisclosureRules,
    flagged_rows: set[int] = frozenset(),  # type: ignore[assignment]
) -> dict[int, str]:
    """Why each hidden printed cell is hidden (the first reason of REASONS that holds)."""
    small_unprinted = {
        i
        for i, k in enumerate(cells.keys)
        if isinstance(k, Unprinted) and rules.is_small(cells.values[i])
    }
    near_small = {m for u in small_unprinted for m in cells.complement_of.get(u, [])}
    out = {}
    for i, key in enumerate(cells.keys):
        if not hidden[i] or isinstance(key, Unprinted):
            continue
        if cells.arrived_hidden[i]:
            by_stage = key[0] in flagged_rows or i in cells.marked
            out[i] = "by_stage" if by_stage else "not_applicable"
        elif linked[i]:
            out[i] = "linked"
        elif rules.is_small(cells.values[i]):
            out[i] = "primary"
        elif i in near_small:
            out[i] = "complement"
        else:
            out[i] = "secondary"
    return out


def followed_hidden(
    frame: pl.DataFrame, spec: TableSpec, published: Mapping[str, pl.DataFrame]
) -> set[tuple[int, str]]:
    """(row, column) of this table computed from a cell another table hides (`spec.follows`)."""
    out = set()
    for follow in spec.follows:
        other = published.get(follow.other)
        if other is None:
            continue
        for target, (other_row, column) in follow.rows(frame, other):
            if other[column][other_row] not in (None, "", HIDDEN_TEXT):
                continue
            if isinstance(target, tuple):
                out.add(target)
            else:
                out |= {(target, c) for c in follow.columns if c in frame.columns}
    return out


def _apply(
    frame: pl.DataFrame,
    spec: TableSpec,
    rules: DisclosureRules,
    cells: Cells,
    hidden: Sequence[bool],
    followed: set[tuple[int, str]] = frozenset(),  # type: ignore[assignment]
    flagged: set[int] = frozenset(),  # type: ignore[assignment]
) -> pl.DataFrame:
    """`frame` with hidden cells, the values derived from them and the statistics of small
    or hidden n emptied; the flag column set where a row lost something."""
    gone = {
        key
        for key, h in zip(cells.keys, hidden, strict=True)
        if h and not isinstance(key, Unprinted)
    }
    columns = {c: frame[c].to_list() for c in frame.columns}
    touched = [False] * frame.height
    for row, column in gone:
        if is_shown(columns[column][row]):
            touched[row] = True
            columns[column][row] = HIDDEN_TEXT
        elif row in flagged and columns[column][row] in (None, ""):  # hidden by the stage
            columns[column][row] = HIDDEN_TEXT
        # an empty cell in a row nobody flagged stays empty: not applicable
    text_columns = set(spec.text_columns(frame.columns))

    def hide(row: int, column: str) -> None:
        """Hide a value computed from hidden cells; an empty text ("no stars", "not
        significant") too, since "" beside ".." elsewhere would tell which it was."""
        if columns[column][row] not in (None, HIDDEN_TEXT):
            columns[column][row] = HIDDEN_TEXT
            touched[row] = True

    def withhold(row: int, column: str) -> None:
        """Hide a value derived from a hidden cell: a printed "n (percent)" cell keeps its
        count and loses its percent, any other cell is hidden (`hide`)."""
        text = columns[column][row]
        if column not in text_columns:
            hide(row, column)
        elif shows_value(text, True):
            columns[column][row] = count_only(text)
            touched[row] = True

    for row, column in followed:
        withhold(row, column)

    # shares of an n not shown first: a value computed from such a share goes with it
    for column, (n_column, _scale) in spec.implied.items():
        for row in range(frame.height):
            if not is_shown(columns[n_column][row]) and is_shown(columns[column][row]):
                columns[column][row] = HIDDEN_TEXT
                touched[row] = True
    for share, n_cell, _scale in spec.implied_cells_of(frame):
        if not is_shown(columns[n_cell[1]][n_cell[0]]) and is_shown(columns[share[1]][share[0]]):
            columns[share[1]][share[0]] = HIDDEN_TEXT
            touched[share[0]] = True

    def gone_now(row: int, column: str) -> bool:
        """Whether a source cell is hidden: by this gate or, text "..", already."""
        return (row, column) in gone or columns[column][row] == HIDDEN_TEXT

    for column, sources in spec.derived.items():
        for row in range(frame.height):
            if any(gone_now(row, s) for s in sources):
                hide(row, column)
    unknown = {k for k, v in zip(cells.keys, cells.values, strict=True) if v is None}
    for column, (sources, keys) in spec.derived_over.items():
        for rows in row_groups(frame, keys).values():
            if any(gone_now(r, src) or (r, src) in unknown for r in rows for src in sources):
                for r in rows:
                    hide(r, column)
    for column, n_column in spec.stats.items():
        for row in range(frame.height):
            n = number(columns[n_column][row])
            if (n is None or n < rules.min_count) and is_shown(columns[column][row]):
                columns[column][row] = HIDDEN_TEXT
                touched[row] = True
    for (row, column), sources in spec.derived_cells_of(frame):
        if not all(is_shown(columns[c][r]) for r, c in sources):
            withhold(row, column)
    if spec.flag:  # the gate owns the flag: a stage writes its cells whole, flag or not
        before = columns.get(spec.flag, ["false"] * frame.height)
        columns[spec.flag] = ["true" if t else v for t, v in zip(touched, before, strict=True)]
    return pl.DataFrame(columns, schema={c: pl.String for c in columns})


def _empty_non_finite(frame: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    """`frame` with inf and NaN cells emptied (a ratio over zero is no number), and how many."""
    bad = {"inf", "-inf", "nan", "NaN", "+inf", "Infinity", "-Infinity"}
    found = sum(frame[c].is_in(list(bad)).sum() for c in frame.columns)
    if not found:
        return frame, 0
    return frame.with_columns(
        pl.when(pl.col(c).is_in(list(bad))).then(None).otherwise(pl.col(c)).alias(c)
        for c in frame.columns
    ), int(found)
