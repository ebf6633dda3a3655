"""The attacker's linear programs (issue 16), for one table family or for all together.

A family is what an intruder reads from a group of published tables: the possible
spells or persons of its population (atoms: combinations of attribute values), each
shown number as an equality or inequality over the atom counts, and the counts it wants
to pin (targets). For each target whose true value is 1..threshold-1 the attacker
solves two linear programs over non-negative atom counts, its lowest and highest
possible value; a range narrower than the threshold is a disclosure.

All families together: the families that count cohort spells are linked through the
cohort's cells `N[treated, person_row, income_row]` (variables of the joint program):
each family states which of those cells its population fills (`Link`), exactly or as a
part. The joint program is then exact for an intruder who allows every combination of
the families' attributes within a cohort cell: the families' atom counts x_F are
consistent with one joint table of spells if and only if they agree on those cells
(the joint table N_s * prod_F x_F(a, s) / N_s has every family's counts as margins), so
no relation between tables that runs through the cohort is left out. A link may name
finer cells of its own (Table 2 by region: the treated person rows of each region), each
family that knows them linking to them as well as to the cohort's cells.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linprog
from scipy.sparse import csr_matrix

# a cohort spell's cell: (treated, person_row, income_row, provider ownership as B3 prints it)
OWNERSHIPS = ("Offentlig", "Privat", "Okänd")
CELLS = tuple(itertools.product((True, False), (True, False), (True, False), OWNERSHIPS))


def cells_of(
    treated: bool | None = None,
    person_row: bool | None = None,
    income_row: bool | None = None,
    ownership: str | None = None,
) -> frozenset:
    """The cohort cells with the given values (None: any)."""
    want = (treated, person_row, income_row, ownership)
    return frozenset(
        c for c in CELLS if all(w is None or w == v for w, v in zip(want, c, strict=True))
    )


@dataclass(frozen=True)
class Link:
    """`row . x + constant` equals (exact) or is at most the spells in `cells`."""

    row: np.ndarray
    cells: frozenset
    exact: bool = True
    constant: float = 0.0


@dataclass
class Family:
    """What the attacker reads from one group of tables: each shown count, checked against
    the rows, kept as an equality over atom counts (`equal`: (indicator, value)) and flagged
    when small; `lower` holds inequalities (indicator . x >= value); `targets` the counts
    it tries to pin (name -> indicator, or (indicator, constant)); `links` its population's
    place in the cohort."""

    name: str
    size: int
    truth: dict
    threshold: int
    equal: list = field(default_factory=list)
    lower: list = field(default_factory=list)
    targets: dict = field(default_factory=dict)
    links: list = field(default_factory=list)
    problems: list = field(default_factory=list)

    def see(self, where: str, name: tuple, row: np.ndarray, value: float) -> None:
        """One shown count `value` of cell `name` (atom indicator `row`) in file `where`."""
        true = self.truth[name]
        assert true == value, f"{where}: {name} shows {value}, rows give {true}"
        if 0 < value < self.threshold:
            self.problems.append(f"{where}: {name} = {value:g} is shown")
        self.equal.append((row, value))

    def percent_of(self, total: np.ndarray, n: float, percent: float) -> None:
        """A printed count `n` and its percent rounded to a whole number: its total
        (indicator `total`) lies between 100 n / (percent + 0.5) and 100 n / (percent - 0.5)."""
        self.lower.append((total, 100 * n / (percent + 0.5) - 1e-9))
        if percent >= 1:
            self.lower.append((-total, -100 * n / (percent - 0.5) - 1e-9))

    def findings(self) -> list[str]:
        """The small counts this family shows, and the targets its own tables confine."""
        return self.problems + pinned([self], linked=False)


def pinned(families: list[Family], linked: bool = True) -> list[str]:
    """Every target of 1..threshold-1 whose range, over non-negative counts meeting every
    family's constraints (and, when `linked`, their links to the cohort's cells), is
    narrower than its family's threshold; one message each."""
    offsets = np.cumsum([0, *(f.size for f in families)])
    shared = dict.fromkeys(CELLS)  # the cohort's cells, then any finer ones a link names
    for family in families:
        shared |= dict.fromkeys(c for link in family.links for c in sorted(link.cells, key=str))
    cell_index = {c: int(offsets[-1]) + i for i, c in enumerate(shared)}
    width = int(offsets[-1]) + (len(shared) if linked else 0)
    eq, ub = _Rows(width), _Rows(width)
    for family, start in zip(families, offsets, strict=False):
        for row, value in family.equal:
            eq.add({start: row}, value)
        for row, value in family.lower:
            ub.add({start: -row}, -value)
        for link in family.links if linked else ():
            minus = {cell_index[c]: np.array([-1.0]) for c in link.cells}
            (eq if link.exact else ub).add({start: link.row, **minus}, -link.constant)
    found = []
    kw = dict(bounds=(0, None), method="highs", **eq.as_eq(), **ub.as_ub())
    for family, start in zip(families, offsets, strict=False):
        for name, target in family.targets.items():
            value = family.truth[name]
            if not 0 < value < family.threshold:
                continue
            row, constant = target if isinstance(target, tuple) else (target, 0.0)
            goal = np.zeros(width)
            goal[start : start + family.size] = row
            bottom = top = constant  # a target of shown numbers only
            if goal.any():
                low, high = linprog(goal, **kw), linprog(-goal, **kw)
                assert low.status == 0, low.message  # the true counts are one solution
                top = np.inf if high.status == 3 else -high.fun + constant
                bottom = low.fun + constant
            if top - bottom < family.threshold - 1e-6:
                found.append(f"{family.name} {name} = {value} lies in [{bottom:.2f}, {top:.2f}]")
    return found


class _Rows:
    """Sparse constraint rows over the joint program's columns."""

    def __init__(self, width: int) -> None:
        self.width, self.data, self.columns, self.starts, self.rhs = width, [], [], [0], []

    def add(self, parts: dict[int, np.ndarray], rhs: float) -> None:
        """One row: at each offset its coefficients; `rhs` its right-hand side."""
        for start, coefficients in parts.items():
            nonzero = np.flatnonzero(coefficients)
            self.columns.extend((start + nonzero).tolist())
            self.data.extend(np.asarray(coefficients)[nonzero].tolist())
        self.starts.append(len(self.data))
        self.rhs.append(rhs)

    def matrix(self) -> csr_matrix | None:
        """The rows as a sparse matrix (None without rows)."""
        if not self.rhs:
            return None
        return csr_matrix((self.data, self.columns, self.starts), shape=(len(self.rhs), self.width))

    def as_eq(self) -> dict:
        """linprog's equality arguments."""
        return {"A_eq": self.matrix(), "b_eq": self.rhs or None}

    def as_ub(self) -> dict:
        """linprog's upper-bound arguments."""
        return {"A_ub": self.matrix(), "b_ub": self.rhs or None}
