"""The fitted-model base shared by the logit, NB2 and Cox results, and their common helpers.

A result (`FittedModel` subclass) is a frozen record of a finished fit, in the manner of
lifelines' fitters (fitted facts end in an underscore): estimates `params_` on the
model's linear scale, their covariance `cov_`, the rows fitted `n`, and the pre-fit and
fit `warnings_`. From those it derives
`std_err`, the treatment term's `p_value`, the coefficient table, the tidy `summary`
frame written to `models/*.parquet` (columns `SUMMARY_COLUMNS`) and `metadata()` for
the model JSON. The helpers here (Wald intervals, safe square roots, JSON-ready
floats, dropping unusable rows) exist once for all models.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
from scipy import stats

LEVEL = 0.95
SUMMARY_COLUMNS = ("model", "term", "estimate", "std_err", "ci_low", "ci_high", "p_value", "n")
COEFFICIENT_SCHEMA = {"term": pl.String, **dict.fromkeys(SUMMARY_COLUMNS[2:7], pl.Float64)}


def wald(est: Any, se: Any, level: float = LEVEL) -> tuple[Any, Any, Any]:
    """(ci_low, ci_high, p): Wald CI bounds on the scale of `est` and the two-sided normal p,
    each shaped like `est`; `se` its standard error."""
    z = stats.norm.ppf(0.5 + level / 2)
    est, se = np.asarray(est, dtype=float), np.asarray(se, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = 2 * stats.norm.sf(np.abs(est / se))
    return est - z * se, est + z * se, p


def safe_sqrt(values: Any) -> Any:
    """Square root with NaN for negative variances (singular fits), no warning."""
    values = np.asarray(values, dtype=float)
    return np.sqrt(np.where(values >= 0, values, np.nan))


def json_float(value: float) -> float | None:
    """`value` as a float, or None when NaN/inf (JSON has no NaN)."""
    return float(value) if math.isfinite(value) else None


def json_floats(values: np.ndarray) -> list[float | None]:
    """`values` as a list of floats with None for NaN/inf (JSON has no NaN)."""
    return [json_float(float(v)) for v in values]


def coefficient_table(
    terms: Sequence[str], params: np.ndarray, std_err: np.ndarray
) -> pl.DataFrame:
    """One row per term: estimate, std_err, 95 % Wald CI and p (on the scale of `params`)."""
    lo, hi, p = wald(params, std_err)
    return pl.DataFrame(
        {
            "term": list(terms),
            "estimate": params,
            "std_err": std_err,
            "ci_low": lo,
            "ci_high": hi,
            "p_value": p,
        },
        schema=COEFFICIENT_SCHEMA,
    )


def require_columns(frame: pl.DataFrame, columns: Sequence[str]) -> None:
    """None; ValueError naming the `columns` that are not in `frame`."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"columns not in frame: {missing}")


def drop_missing(
    frame: pl.DataFrame, columns: Sequence[str], *, inf: bool = False
) -> tuple[pl.DataFrame, list[str]]:
    """Rows of `frame` with no null in `columns`, and the warning with counts per column.

    In a float column NaN (and with `inf`, also +-inf) counts as missing. The warning
    list is empty when no row was dropped.
    """
    is_missing = {}
    for c in columns:
        expr = pl.col(c).is_null()
        if frame.schema[c].is_float():
            expr = expr | (~pl.col(c).is_finite() if inf else pl.col(c).is_nan())
        is_missing[c] = expr
    rows = frame.filter(~pl.any_horizontal(is_missing.values()))
    if rows.height == frame.height:
        return rows, []
    per_col = frame.select(e.sum().alias(c) for c, e in is_missing.items()).row(0, named=True)
    detail = ", ".join(f"{c}: {k}" for c, k in per_col.items() if k)
    what = "nulls/NaN/inf" if inf else "nulls/NaN"
    dropped = frame.height - rows.height
    return rows, [f"{dropped} of {frame.height} rows dropped for {what} ({detail})"]


def drop_negative(rows: pl.DataFrame, column: str, reason: str) -> tuple[pl.DataFrame, list[str]]:
    """Rows with `column` >= 0, and the warning "<k> rows dropped: <reason>" if any were not."""
    negative = int((rows[column] < 0).sum())
    if not negative:
        return rows, []
    return rows.filter(pl.col(column) >= 0), [f"{negative} rows dropped: {reason}"]


def as_binary(values: pl.Series, role: str) -> np.ndarray:
    """`values` (bool or 0/1 numeric, no nulls) as a float 0/1 array; ValueError otherwise."""
    arr = values.cast(pl.Float64).to_numpy()
    if not np.isin(arr, (0.0, 1.0)).all():
        raise ValueError(f"{role} {values.name!r} must be bool or 0/1, got other values")
    return arr


@dataclass(frozen=True, eq=False)
class FittedModel:
    """A fitted model with a binary treatment term; subclasses add their own facts.

    Attributes:
        name: value of the `model` column of `summary` and of `metadata()["model"]`.
        treatment: the treatment column; its term is named after it.
        terms: design terms in the order of `params_`.
        params_: estimates on the model's linear scale; NaN when not fitted.
        cov_: their covariance (a model may append rows/columns for further
            parameters after the terms, e.g. NB2's alpha).
        n: rows fitted; n_dropped: input rows not fitted (reasons in `warnings_`);
            n_clusters: distinct clusters (None when not clustered).
        converged: False when the fit did not converge or nothing was fitted.
        warnings_: pre-fit and fit warnings, with counts; written to the model JSON.
    """

    name: str
    treatment: str
    terms: tuple[str, ...]
    params_: np.ndarray
    cov_: np.ndarray = field(repr=False)
    n: int
    n_dropped: int
    n_clusters: int | None
    converged: bool
    warnings_: tuple[str, ...]

    @property
    def std_err(self) -> np.ndarray:
        """Standard errors of `params` (from `cov`), same scale as `params`."""
        return safe_sqrt(np.diag(self.cov_)[: len(self.terms)])

    @property
    def p_value(self) -> float:
        """Two-sided Wald p-value of the treatment term."""
        j = self.terms.index(self.treatment)
        return float(wald(self.params_[j], self.std_err[j])[2])

    @property
    def coefficients(self) -> pl.DataFrame:
        """One row per design term: estimate, std_err, 95 % CI, p_value (scale of `params`)."""
        return coefficient_table(self.terms, self.params_, self.std_err)

    @property
    def summary(self) -> pl.DataFrame:
        """Tidy frame `model, term, estimate, std_err, ci_low, ci_high, p_value, n`.

        The design terms (`coefficients`), then the model's derived rows (`_derived`).
        """
        return pl.concat([self.coefficients, *self._derived()]).select(
            pl.lit(self.name, pl.String).alias("model"),
            *SUMMARY_COLUMNS[1:7],
            pl.lit(self.n, pl.Int64).alias("n"),
        )

    def metadata(self) -> dict[str, Any]:
        """JSON-ready fit facts: counts, clusters, convergence, warnings, model specifics."""
        return {
            "model": self.name,
            "treatment": self.treatment,
            "n": self.n,
            "n_dropped": self.n_dropped,
            "n_clusters": self.n_clusters,
            "converged": self.converged,
            "warnings": list(self.warnings_),
            **self._metadata(),
        }

    def _derived(self) -> list[pl.DataFrame]:
        """Summary rows after the design terms (columns `COEFFICIENT_SCHEMA`); none here."""
        return []

    def _metadata(self) -> dict[str, Any]:
        """The model's own JSON-ready facts added to `metadata()`; none here."""
        return {}

    def _treatment_ratio(self) -> tuple[float, float, float]:
        """exp(b) of the treatment term and exp of its 95 % Wald CI bounds, unitless."""
        j = self.terms.index(self.treatment)
        lo, hi, _ = wald(self.params_[j], self.std_err[j])
        return math.exp(self.params_[j]), math.exp(lo), math.exp(hi)

    def _ratio_row(self, label: str) -> dict[str, Any]:
        """Summary row `label(treatment)`: exp(b), delta-method SE exp(b) se(b), exp CI, p."""
        ratio, lo, hi = self._treatment_ratio()
        se = self.std_err[self.terms.index(self.treatment)]
        return {
            "term": f"{label}({self.treatment})",
            "estimate": ratio,
            "std_err": ratio * se,
            "ci_low": lo,
            "ci_high": hi,
            "p_value": self.p_value,
        }
