"""Design matrices of the regression models: dummies, reference levels, aliasing, clusters.

Used by `pipeline.stats.logit`, `pipeline.stats.nb2` and `pipeline.stats.fractional`.
A categorical (string) covariate gets one 0/1 column `col[level]` per non-reference
level; its reference is the wanted level if present, else the most frequent level,
ties broken by the smallest name in code-point order. Numeric and bool covariates enter as is.
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


def treatment_design(
    rows: pl.DataFrame,
    t: np.ndarray,
    treatment: str,
    numeric: Sequence[str],
    interaction_with: str | None,
    covariates: Sequence[str],
    wanted: Mapping[str, str],
    notes: list[str],
) -> tuple[
    np.ndarray, list[str], str | None, dict[str, str], Mapping[str, np.ndarray], tuple[str, ...]
]:
    """Design matrix, terms, interaction term, reference levels, categorical levels, dropped.

    The design of the NB2 and fractional-logit models (`pipeline.stats.nb2`,
    `pipeline.stats.fractional`), one row per model row.

    Columns: intercept, treatment, `numeric` (zero-variance ones dropped with a warning),
    treatment x `interaction_with` (if kept), covariate terms (`pipeline.stats.design`'s
    rule: dummies per non-reference level, numeric as is, one-level ones dropped).
    """
    cols, terms, ref, levels_of, dropped = build_design(
        rows, t, covariates if rows.height else [], wanted, notes
    )
    terms[1] = treatment
    main_cols, main_terms = [], []
    for col in numeric:
        values = rows[col].cast(pl.Float64).to_numpy()
        if rows.height and np.ptp(values) == 0:
            notes.append(f"numeric column {col!r} dropped: zero variance (all {values[0]:g})")
            dropped = (*dropped, col)
            continue
        main_cols.append(values)
        main_terms.append(col)
    inter_term = None
    if interaction_with in main_terms:
        inter_term = f"{treatment}:{interaction_with}"
        main_cols.append(t * main_cols[main_terms.index(interaction_with)])
        main_terms.append(inter_term)
    x = np.column_stack([*cols[:2], *main_cols, *cols[2:]])
    return x, [*terms[:2], *main_terms, *terms[2:]], inter_term, ref, levels_of, dropped


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


def cluster_codes(
    rows: pl.DataFrame, cluster: str | Sequence[str] | None
) -> tuple[tuple[np.ndarray, ...] | None, int | None]:
    """Per clustering column, each row's 0-based cluster code; and the fewest clusters.

    `cluster`: one column (one-way) or a pair (two-way). (None, None) without `cluster`.
    """
    if cluster is None:
        return None, None
    columns = [cluster] if isinstance(cluster, str) else list(cluster)
    codes = tuple(cluster_groups(rows, col)[0] for col in columns)
    return codes, min((int(c.max()) + 1 if rows.height else 0) for c in codes)


def cluster_meat(scores: np.ndarray, groups: Sequence[np.ndarray]) -> np.ndarray:
    """Sum over clusterings of sign G/(G-1) S'S, S the per-cluster score sums (params x params).

    `scores`: one row per model row. `groups`: one code array (one-way: +) or two
    (two-way, Cameron-Gelbach-Miller: + a, + b, - their intersection); clusters coded
    0..G-1. R sandwich's `meatCL` (cadjust, multi0 = FALSE) times N, before its
    (N-1)/(N-K).
    """
    ways = [(codes, 1.0) for codes in groups]
    if len(groups) == 2:
        a, b = (codes.astype(np.int64) for codes in groups)
        pair = np.unique(a * (int(b.max()) + 1) + b, return_inverse=True)[1].ravel()
        ways.append((pair, -1.0))
    k = scores.shape[1]
    meat = np.zeros((k, k))
    columns = np.asfortranarray(scores)
    for codes, sign in ways:
        g = int(codes.max()) + 1
        sums = np.column_stack(
            [np.bincount(codes, weights=columns[:, j], minlength=g) for j in range(k)]
        )
        meat += sign * g / (g - 1) * (sums.T @ sums)
    return meat


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
