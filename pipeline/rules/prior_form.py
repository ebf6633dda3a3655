"""How prior sick days enter the NB model (`nb.prior_form`, analysis-spec.md §6.5).

A form maps prior days (days in [0, window]) to design columns; the treatment
interaction is one `treated:<column>` per column, and the g-computation rebuilds the
same columns at each prior-days value it sets. Forms:
- `linear`: prior_days as is (the report's reading of "prior sick absence").
- `log1p`: log(1 + prior_days).
- `spline`: natural cubic spline (linear beyond the boundary knots; ESL 5.2.1
  truncated-power basis) in prior_days / window with knots at fixed quantiles of the
  design's prior days (`nb.spline_knots`), so K distinct knots give K - 1 columns.
- `bands`: one indicator per band [edge_i, edge_i+1) above the first (`nb.prior_bands`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np

FORMS = ("linear", "log1p", "spline", "bands")


@dataclass(frozen=True)
class PriorForm:
    """A fitted prior-days basis: the form, its knots / band edges (days) and window (days)."""

    form: str
    knots: tuple[float, ...] = ()
    edges: tuple[float, ...] = ()
    window: float = 365.0

    @property
    def names(self) -> list[str]:
        """Design column names of the basis, in order."""
        if self.form == "linear":
            return ["prior_days"]
        if self.form == "log1p":
            return ["log1p_prior_days"]
        if self.form == "spline":
            return [f"prior_ns{j + 1}" for j in range(max(len(self.knots) - 1, 1))]
        return [f"prior_band[{lo:g},{hi:g})" for lo, hi in pairwise(self.edges[1:])]

    def columns(self, prior_days: np.ndarray) -> dict[str, np.ndarray]:
        """Basis columns (name -> float array, one value per prior-days value)."""
        p = np.asarray(prior_days, dtype=float)
        if self.form == "linear":
            return {"prior_days": p}
        if self.form == "log1p":
            return {"log1p_prior_days": np.log1p(p)}
        if self.form == "spline":
            return dict(zip(self.names, natural_cubic(p / self.window, self.knots), strict=True))
        return {
            name: ((p >= lo) & (p < hi)).astype(float)
            for name, lo, hi in zip(self.names, self.edges[1:-1], self.edges[2:], strict=True)
        }


def natural_cubic(x: np.ndarray, knots: Sequence[float]) -> list[np.ndarray]:
    """Natural cubic spline basis columns of `x` (ESL eq. 5.4-5.5; knots in x's unit):
    x, then d_k - d_{K-1} for k = 1..K-2; linear beyond the boundary knots."""
    knots = np.asarray(knots, dtype=float)
    cols = [x]
    if len(knots) < 3:
        return cols
    last = knots[-1]

    def d(k: float) -> np.ndarray:
        return (np.clip(x - k, 0, None) ** 3 - np.clip(x - last, 0, None) ** 3) / (last - k)

    d_prev = d(knots[-2])
    cols += [d(k) - d_prev for k in knots[:-2]]
    return cols


def build_form(
    form: str,
    prior_days: np.ndarray,
    window: float,
    knot_quantiles: Sequence[float],
    band_edges: Sequence[float],
) -> PriorForm:
    """The `form` basis for a design whose rows have `prior_days` (days): spline knots at
    `knot_quantiles` of them (distinct, in prior_days / window); bands from `band_edges`
    (days, the first band [edge0, edge1) the reference), closed by window + 1."""
    if form not in FORMS:
        raise ValueError(f"nb.prior_form must be one of {FORMS}, got {form!r}")
    if form == "spline":
        q = np.quantile(np.asarray(prior_days, dtype=float), list(knot_quantiles))
        return PriorForm(form, knots=tuple(np.unique(np.round(q / window, 6))), window=window)
    if form == "bands":
        edges = sorted({float(e) for e in band_edges if e <= window} | {window + 1.0})
        return PriorForm(form, edges=tuple(edges), window=window)
    return PriorForm(form, window=window)
