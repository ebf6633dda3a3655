"""Disclosure control: no suppressed count can be recomputed from what is shown.

The independent check is a linear programme: for each hidden cell, the smallest
and largest value consistent with the shown cells, the constraints and n >= 0.
If they coincide, the cell leaks.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.stats.disclosure import recoverable_cells, suppressed_cells
from tests.helpers import leaking_cells


def grid_with_margins(values: list[list[int]]):
    """Cells of an r x c table plus row totals, column totals and the grand total."""
    r, c = len(values), len(values[0])
    counts = [v for row in values for v in row]
    cell = lambda i, j: i * c + j  # noqa: E731
    row_total = [len(counts) + i for i in range(r)]
    counts += [sum(row) for row in values]
    col_total = [len(counts) + j for j in range(c)]
    counts += [sum(values[i][j] for i in range(r)) for j in range(c)]
    grand = len(counts)
    counts.append(sum(counts[t] for t in row_total))
    constraints = [(row_total[i], [cell(i, j) for j in range(c)]) for i in range(r)]
    constraints += [(col_total[j], [cell(i, j) for i in range(r)]) for j in range(c)]
    constraints += [(grand, row_total), (grand, col_total)]
    return counts, constraints


def test_naive_primary_suppression_leaks_through_the_total_and_ours_does_not():
    counts, constraints = grid_with_margins([[3, 40], [20, 50]])
    naive = [0 < n < 5 for n in counts]
    assert leaking_cells(counts, constraints, naive) == [0]  # 43 - 40 = 3
    hidden = suppressed_cells(counts, constraints, min_count=5)
    assert hidden[0]
    assert leaking_cells(counts, constraints, hidden) == []


def test_a_cell_pinned_by_two_constraints_together_is_caught():
    # Hidden a, b, c with a+b and b+c... and a+b+c all known pins b only jointly.
    counts = [2, 2, 2, 4, 4, 6]
    constraints = [(3, [0, 1]), (4, [1, 2]), (5, [0, 1, 2])]
    hidden = [True, True, True, False, False, False]
    assert recoverable_cells(6, constraints, hidden) == [0, 1, 2]
    protected = suppressed_cells(counts, constraints, min_count=5)
    assert leaking_cells(counts, constraints, protected) == []


@settings(max_examples=60, deadline=None)
@given(
    values=st.integers(2, 4).flatmap(
        lambda r: st.integers(2, 4).flatmap(
            lambda c: st.lists(
                st.lists(st.sampled_from([0, 1, 2, 3, 4, 7, 12, 30, 80]), min_size=c, max_size=c),
                min_size=r,
                max_size=r,
            )
        )
    )
)
def test_no_suppressed_cell_can_be_recomputed_in_random_tables(values):
    counts, constraints = grid_with_margins(values)
    hidden = suppressed_cells(counts, constraints, min_count=5)
    assert all(hidden[i] for i, n in enumerate(counts) if 0 < n < 5)
    assert leaking_cells(counts, constraints, hidden) == []
