"""NB2 of a count on one numeric exposure, no treatment arm (L1334, analysis-spec.md §6.5).

`after_days ~ slope + numeric + covariates` fitted by the optimiser and covariance
conventions of `pipeline.stats.nb2` (module docstring there); the `slope` column takes
the design's treatment position. Returns the coefficient table on the log-rate scale
plus `IRR(<slope> x <per>)` rows; never raises on data problems (NaN rows and a note).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from pipeline.stats._nb2_fit import best_fit
from pipeline.stats.base import coefficient_table, drop_missing, safe_sqrt, wald
from pipeline.stats.design import build_design, cluster_codes


def fit_nb2_slope(
    frame: pl.DataFrame,
    outcome: str,
    slope: str,
    numeric: Sequence[str],
    covariates: Sequence[str],
    cluster: str | Sequence[str] | None,
    per: float,
) -> tuple[pl.DataFrame, list[str]]:
    """(`IRR(<slope> per <per>)`: exp(per b) with its CI, then one row per term: estimate,
    std_err, 95 % Wald CI, p on the log-rate scale; notes); grain: one fit."""
    extras = ([cluster] if isinstance(cluster, str) else list(cluster)) if cluster else []
    used = list(dict.fromkeys([outcome, slope, *numeric, *covariates, *extras]))
    rows, notes = drop_missing(frame, used, inf=True)
    s = rows[slope].cast(pl.Float64).to_numpy()
    cols, terms, _, _, _ = build_design(rows, s, covariates, {}, notes)
    terms[1] = slope
    extra = [rows[c].cast(pl.Float64).to_numpy() for c in numeric]
    x = np.column_stack([*cols[:2], *extra, *cols[2:]])
    terms = [*terms[:2], *numeric, *terms[2:]]
    y = rows[outcome].cast(pl.Float64).to_numpy()
    groups, n_clusters = cluster_codes(rows, cluster)
    ok = rows.height > x.shape[1] + 1 and y.any() and np.ptp(s) > 0
    if not ok or (n_clusters is not None and n_clusters < 2):
        k = len(terms)
        params, se = np.full(k, np.nan), np.full(k, np.nan)
        notes.append(f"not fitted: {rows.height} rows, exposure or outcome constant")
    else:
        fit, converged, fit_notes = best_fit(y, x, None, groups)
        notes += fit_notes + ([] if converged else ["did not converge"])
        params = fit.params[:-1]
        se = safe_sqrt(np.diag(fit.cov)[:-1])
    table = coefficient_table(terms, params, se)
    lo, hi, p = wald(params[1] * per, se[1] * per)
    irr = pl.DataFrame(
        {
            "term": [f"IRR({slope} per {per:g})"],
            "estimate": [float(np.exp(params[1] * per))],
            "std_err": [float(np.exp(params[1] * per) * se[1] * per)],
            "ci_low": [float(np.exp(lo))],
            "ci_high": [float(np.exp(hi))],
            "p_value": [float(p)],
        },
        schema=table.schema,
    )
    return pl.concat([irr, table]).with_columns(pl.lit(rows.height, pl.Int64).alias("n")), notes
