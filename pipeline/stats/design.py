"""Design matrices of the regression models: dummies, reference levels, aliasing, clusters.

Used by `pipeline.stats.logit` and `pipeline.stats.nb2`. A categorical (string)
covariate gets one 0/1 column `col[level]` per non-reference level; its reference is
the wanted level if present, else the most frequent level, ties broken by the
smallest name in code-point order. Numeric and bool covariates enter as is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import polars as pl

INTERCEPT = "intercept"
ALIAS_TOL = 1e-10  # smallest eigenvalue of the unit-diagonal Gram matrix below = aliased
CATEGORICAL = (pl.String, pl.Categorical, pl.Enum)


def reference_level(levels: np.ndarray, counts: np.ndarray, wanted: str | None) -> str:
    """`wanted` if present, else the most frequent level, ties broken by the sorted name."""
    if wanted is not None and wanted in levels:
        return wanted
    best = counts.max()
    return str(min(lv for lv, c in zip(levels, counts, strict=True) if c == best))


def build_design(
    rows: pl.DataFrame,
    treatment: np.ndarray,
    covariates: Sequence[str],
    wanted: Mapping[str, str],
    notes: list[str],
) -> tuple[list[np.ndarray], list[str], dict[str, str], dict[str, np.ndarray], tuple[str, ...]]:
    """Design columns, term names, reference levels, categorical levels, dropped covariates.

    Columns: intercept, treatment (its term name left "" for the caller), covariate
    terms. Appends a warning to `notes` for each dropped covariate (one level, zero
    variance) and absent reference level.
    """
    cols, terms = [np.ones(len(treatment)), treatment], [INTERCEPT, ""]
    reference: dict[str, str] = {}
    levels_of: dict[str, np.ndarray] = {}
    dropped: list[str] = []
    for col in covariates:
        series = rows[col]
        if isinstance(series.dtype, CATEGORICAL):
            values = series.cast(pl.String).to_numpy().astype(str)
            levels, counts = np.unique(values, return_counts=True)
            if len(levels) < 2:
                notes.append(
                    f"covariate {col!r} dropped: one level {str(levels[0])!r} (n={counts[0]})"
                )
                dropped.append(col)
                continue
            ref = reference_level(levels, counts, wanted.get(col))
            if col in wanted and wanted[col] != ref:
                notes.append(f"reference {wanted[col]!r} of {col!r} absent; used {ref!r}")
            reference[col] = ref
            levels_of[col] = values
            for level in levels:
                if level != ref:
                    cols.append((values == level).astype(float))
                    terms.append(f"{col}[{level}]")
        elif series.dtype.is_numeric() or series.dtype == pl.Boolean:
            values = series.cast(pl.Float64).to_numpy()
            if np.ptp(values) == 0:
                notes.append(f"covariate {col!r} dropped: zero variance (all {values[0]:g})")
                dropped.append(col)
                continue
            cols.append(values)
            terms.append(col)
        else:
            raise TypeError(f"covariate {col!r} has unsupported dtype {series.dtype}")
    return cols, terms, reference, levels_of, tuple(dropped)


def aliased(x: np.ndarray) -> list[int]:
    """Indices of columns that are linear combinations of earlier columns (as R's glm).

    Greedy: a column is kept if the Gram matrix of the kept columns plus it, scaled to
    unit diagonal (so SEK-sized and 0/1 columns compare), stays positive definite.
    """
    gram = x.T @ x
    norm = np.sqrt(np.diag(gram))
    scaled = gram / np.outer(np.where(norm > 0, norm, 1.0), np.where(norm > 0, norm, 1.0))
    kept: list[int] = []
    out: list[int] = []
    for j in range(x.shape[1]):
        trial = [*kept, j]
        smallest = np.linalg.eigvalsh(scaled[np.ix_(trial, trial)]).min()
        (kept if norm[j] > 0 and smallest > ALIAS_TOL else out).append(j)
    return out


def cluster_groups(rows: pl.DataFrame, cluster: str | None) -> tuple[np.ndarray | None, int | None]:
    """Per row, the 0-based code of its `cluster` value, and the number of clusters.

    (None, None) without `cluster`.
    """
    if cluster is None:
        return None, None
    groups = np.unique(rows[cluster].to_numpy(), return_inverse=True)[1]
    return groups, int(groups.max()) + 1 if rows.height else 0


def outcome_groups(
    t: np.ndarray, treatment: str, levels_of: Mapping[str, np.ndarray]
) -> list[tuple[str, np.ndarray]]:
    """(label, row mask) per treatment arm (1, 0) and per level of each categorical covariate.

    The groups in which a separation / all-zero outcome check is made.
    """
    groups = [(f"{treatment}={arm}", t == arm) for arm in (1, 0)]
    return groups + [
        (f"{col}={level}", values == level)
        for col, values in levels_of.items()
        for level in np.unique(values)
    ]
