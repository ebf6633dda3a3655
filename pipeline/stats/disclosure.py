"""Small-cell suppression with secondary suppression (analysis-spec.md §11 item 12).

A table is a list of count cells plus the additivity constraints a reader
knows (a total equals the sum of its parts). Primary suppression hides counts
with 0 < n < `min_count`. Secondary suppression then hides further cells until
no hidden count can be recomputed from the shown ones: first the quick rule
(a constraint with exactly one hidden member gets a second one, its smallest
shown part), then an exact check of the whole linear system, which catches
cells pinned down by several constraints together.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy.linalg import null_space
from scipy.optimize import linprog


class UnprotectableError(ValueError):
    """A small cell no further suppression can protect; `cell` is its index."""

    def __init__(self, cell: int, why: str) -> None:
        super().__init__(f"cell {cell} {why}")
        self.cell, self.why = cell, why


Constraint = tuple[int, Sequence[int]]  # (total cell, part cells): total = sum(parts)
TOLERANCE = 1e-9


def recoverable_cells(
    n_cells: int, constraints: Sequence[Constraint], hidden: Sequence[bool]
) -> list[int]:
    """Hidden cells whose value follows from the shown cells and the constraints.

    Hidden cell i is determined iff every solution of the constraints restricted
    to the hidden cells has a zero i-th component in the null space, i.e. the
    null space of that system has only zeros in row i.

    >>> recoverable_cells(3, [(2, [0, 1])], [True, False, False])  # total - shown part
    [0]
    >>> recoverable_cells(3, [(2, [0, 1])], [True, True, False])
    []
    """
    hidden_ids = [i for i in range(n_cells) if hidden[i]]
    if not hidden_ids:
        return []
    column = {cell: j for j, cell in enumerate(hidden_ids)}
    rows = []
    for total, parts in constraints:
        row = np.zeros(len(hidden_ids))
        for cell, sign in [(total, -1.0), *((p, 1.0) for p in parts)]:
            if cell in column:
                row[column[cell]] += sign
        if row.any():
            rows.append(row)
    if not rows:
        return []
    basis = null_space(np.vstack(rows))
    free = np.abs(basis).max(axis=1) > TOLERANCE if basis.size else np.zeros(len(hidden_ids), bool)
    return [cell for cell, j in column.items() if not free[j]]


def feasible_intervals(
    values: Sequence[float | None],
    constraints: Sequence[Constraint],
    hidden: Sequence[bool],
    cells: Sequence[int],
) -> dict[int, tuple[float, float]]:
    """[lowest, highest] value of each of `cells` (hidden ones) that a reader can deduce:
    the range of that cell over all non-negative values of the hidden cells that satisfy
    every constraint with the shown cells at their `values` (linear programming, HiGHS;
    the integer problem relaxed, so the range is at least as wide as the integer one).

    >>> # 40 = c12 + g and c12 = c6 + h with c6 = 37 shown: 37 <= c12 <= 40
    >>> feasible_intervals([40, None, 37, None, None], [(0, [1, 3]), (1, [2, 4])],
    ...                    [False, True, False, True, True], [1])
    {1: (37.0, 40.0)}
    """
    unknown = [i for i, h in enumerate(hidden) if h]
    column = {cell: j for j, cell in enumerate(unknown)}
    rows, rhs = [], []
    for total, parts in constraints:
        row = np.zeros(len(unknown))
        known = 0.0
        for cell, sign in [(total, -1.0), *((p, 1.0) for p in parts)]:
            if cell in column:
                row[column[cell]] += sign
            else:
                known -= sign * float(values[cell])  # type: ignore[arg-type]
        if row.any():
            rows.append(row)
            rhs.append(known)
    out = {}
    for cell in cells:
        if not rows:
            out[cell] = (0.0, math.inf)
            continue
        goal = np.zeros(len(unknown))
        goal[column[cell]] = 1.0
        ends = []
        for sign in (1.0, -1.0):
            found = linprog(
                sign * goal, A_eq=np.vstack(rows), b_eq=rhs, bounds=(0, None), method="highs"
            )
            ends.append(sign * found.fun if found.status == 0 else (math.inf if sign < 0 else 0.0))
        out[cell] = (float(round(ends[0], 6)), float(round(ends[1], 6)))
    return out


def widened_cells(
    counts: Sequence[int],
    constraints: Sequence[Constraint],
    hidden: Sequence[bool],
    sensitive: Sequence[bool],
    min_count: int,
    fixed: Sequence[bool],
    bounded: Sequence[bool] | None = None,
) -> list[bool]:
    """`hidden` plus the cells that must go with it so that every `sensitive` hidden cell's
    feasible interval (`feasible_intervals`) is at least `min_count` wide: while one is
    narrower, the smallest shown cell (not `fixed`) of a constraint holding it or a hidden
    cell joined to it through hidden cells is hidden too. `bounded` hidden cells (value
    unknown here) need less: not to be known to lie in 1..min_count-1 (their highest
    value 0 or >= min_count). Equalities alone (`suppressed_cells`) leave a range; an
    order (a count within 6 months <= within 12 <= n) can still narrow it.

    >>> # n 40, within 12 months 38 (hidden: 2 without income), within 6 months 37
    >>> widened_cells([40, 38, 37, 2, 1], [(0, [1, 3]), (1, [2, 4])],
    ...               [False, True, False, True, True], [0, 0, 0, 1, 0], 5, [0] * 5)
    [False, True, True, True, True]
    """
    hidden = list(hidden)
    values: list[float | None] = [None if h else c for c, h in zip(counts, hidden, strict=True)]
    loose = bounded or [False] * len(counts)
    # hiding more only widens a range: a cell wide enough once stays so, and each round
    # solves again only the cells still narrow and those just hidden
    targets = [
        i for i, (s, b) in enumerate(zip(sensitive, loose, strict=True)) if (s or b) and hidden[i]
    ]
    while True:
        ranges = feasible_intervals(values, constraints, hidden, targets)
        narrow = [
            i
            for i in targets
            if (sensitive[i] and ranges[i][1] - ranges[i][0] < min_count)
            or (loose[i] and 0 < ranges[i][1] < min_count)
        ]
        if not narrow:
            return hidden
        cell = narrow[0]
        near = _hidden_component(cell, constraints, hidden)
        shown = sorted(
            {
                m
                for t, ps in constraints
                if near & {t, *ps}
                for m in (t, *ps)
                if not hidden[m] and not fixed[m]
            },
            key=lambda m: _complement_order(counts, m),
        )
        if not shown:
            raise UnprotectableError(
                cell, f"cannot be protected: its range stays below {min_count} wide"
            )
        new = shown[0]
        hidden[new], values[new] = True, None
        targets = narrow + ([new] if sensitive[new] or loose[new] else [])


def _hidden_component(
    cell: int, constraints: Sequence[Constraint], hidden: Sequence[bool]
) -> set[int]:
    """`cell` and every hidden cell joined to it through constraints by hidden cells: what
    a reader must solve together to bound it."""
    members = [(t, *ps) for t, ps in constraints]
    found, todo = {cell}, [cell]
    while todo:
        here = todo.pop()
        for group in members:
            if here in group:
                new = {m for m in group if hidden[m]} - found
                found |= new
                todo.extend(new)
    return found


def suppressed_cells(
    counts: Sequence[int],
    constraints: Sequence[Constraint],
    min_count: int,
    forced: Sequence[bool] | None = None,
    shown_elsewhere: Sequence[bool] | None = None,
    exempt: Sequence[bool] | None = None,
) -> list[bool]:
    """Which cells to hide (aligned with `counts`): primary plus secondary suppression.

    `exempt` cells are hidden but need no protection: cells never printed whose value is
    not small (n - count of a large complement); they still count as unknown to a reader.

    Cells that another published table also holds keep that table's decision:
    `forced` ones are hidden whatever their count, `shown_elsewhere` ones are
    never picked as complements (hiding them here would protect nothing).

    >>> # parts 3, 10, 12 and their total 25: 3 is primary, 10 is hidden with it
    >>> suppressed_cells([3, 10, 12, 25], [(3, [0, 1, 2])], min_count=5)
    [True, True, False, False]
    >>> # the same, when 10 is printed in another table: 12 is hidden instead
    >>> suppressed_cells([3, 10, 12, 25], [(3, [0, 1, 2])], 5, shown_elsewhere=[0, 1, 0, 0])
    [True, False, True, False]
    >>> # no small cell, but 12 is hidden in another table: it needs a complement here too
    >>> suppressed_cells([10, 11, 12, 33], [(3, [0, 1, 2])], 5, forced=[0, 0, 1, 0])
    [True, False, True, False]
    """
    forced = forced or [False] * len(counts)
    fixed = shown_elsewhere or [False] * len(counts)
    free = exempt or [False] * len(counts)
    hidden = [
        0 < n < min_count or bool(f) or bool(e)
        for n, f, e in zip(counts, forced, free, strict=True)
    ]
    while True:
        _one_hidden_rule(counts, constraints, hidden, fixed, free)
        known_zero = _known_zeros(counts, constraints, hidden)
        unknown = [h and not z for h, z in zip(hidden, known_zero, strict=True)]
        exposed = [c for c in recoverable_cells(len(counts), constraints, unknown) if not free[c]]
        usable = [f or z for f, z in zip(fixed, known_zero, strict=True)]
        protectable = [(cell, _complements(cell, constraints, hidden, usable)) for cell in exposed]
        protectable = [(cell, found) for cell, found in protectable if found]
        if not protectable:
            # Left pinned: zeros, cells the other table hid, or complements whose value is
            # known (>= min_count) while every small count stays protected.
            stuck = [c for c in exposed if 0 < counts[c] < min_count and not forced[c]]
            if stuck:
                raise UnprotectableError(stuck[0], "cannot be protected by its constraints")
            return hidden
        candidates = protectable[0][1]
        hidden[min(candidates, key=lambda m: _complement_order(counts, m))] = True


def _known_zeros(
    counts: Sequence[int], constraints: Sequence[Constraint], hidden: Sequence[bool]
) -> list[bool]:
    """Cells that are parts of a total shown as 0: they are 0 (counts are not negative), so
    hiding them protects nothing."""
    known = [False] * len(counts)
    for total, parts in constraints:
        if not hidden[total] and counts[total] == 0:
            for part in parts:
                known[part] = True
    return known


def _complements(
    cell: int, constraints: Sequence[Constraint], hidden: Sequence[bool], fixed: Sequence[bool]
) -> list[int]:
    """Shown cells, not `fixed` (shown elsewhere, or known to be 0), that share a constraint
    with `cell`."""
    return [
        m
        for total, parts in constraints
        if cell == total or cell in parts
        for m in [total, *parts]
        if not hidden[m] and not fixed[m]
    ]


def _one_hidden_rule(
    counts: Sequence[int],
    constraints: Sequence[Constraint],
    hidden: list[bool],
    fixed: Sequence[bool],
    free: Sequence[bool],
) -> None:
    """Hide a second member (`_complement_order`, not `fixed`) of every constraint with exactly
    one hidden, unless that one needs no protection (`free`); the exact check handles a
    constraint whose other members are all fixed."""
    changed = True
    while changed:
        changed = False
        for total, parts in constraints:
            members = (total, *parts)
            lone = [m for m in members if hidden[m]]
            if len(lone) != 1 or free[lone[0]]:
                continue
            shown = [m for m in (*parts, total) if not hidden[m] and not fixed[m]]
            if not shown:
                continue
            hidden[min(shown, key=lambda m: _complement_order(counts, m))] = True
            changed = True


def _complement_order(counts: Sequence[int], cell: int) -> tuple[bool, int, int]:
    """Sort key for complementary cells: the smallest positive count first, zeros last.

    Hiding a zero protects nothing when its total is shown as zero too, and a
    hidden zero pinned by such a total is a wasted (if harmless) suppression.
    """
    return (counts[cell] == 0, counts[cell], cell)
