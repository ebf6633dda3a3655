"""Sick absence before the spell and before the index, treated vs control (§4.12, L1420, L1087).

Net sick days (`pipeline.rules.sickdays.window_days`: each calendar day once, at its
highest extent) in the `window_days` days before the anchor, all of the person's
benefit periods counted:

- anchor `spell_start`: Table 2's person rows (one spell per person), treated
  vs control, two independent groups: Welch CI for the difference in means,
  Newcombe CI for the difference in shares with any sick day;
- anchor `index`: the risk sets of §6.2, the case's first GC001 day for the case
  and its controls: differences are paired within sets (case minus the mean of
  its controls, then averaged over sets; normal CI over sets), so the control
  value shown is the mean over sets of the set's control mean. This window holds
  the current spell's first t days, so nearly everyone has some; anchor
  `index_outside_spell` counts the same window up to the day before the
  member's own spell only (the sick history the spell started with). Sets share
  controls, so treating them as independent makes these CIs slightly narrow.

Medians and the CI of their difference come from a bootstrap (`draws`, seeded)
of each group's frequency table (independent groups; for the index anchor this
ignores the matching, which widens the interval when cases and their controls
are alike).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import polars as pl
from scipy import stats

from pipeline.stats.proportions import newcombe_diff_ci, wilson_ci

Z95 = float(stats.norm.ppf(0.975))
STATISTICS = ("mean", "median", "share_any")


def start_windows(person_rows: pl.DataFrame, window_days: int) -> pl.DataFrame:
    """Members for the spell-start anchor: member_id, lopnr, window_start, window_end, treated."""
    return person_rows.select(
        pl.col("spell_id").alias("member_id"),
        "lopnr",
        (pl.col("start") - pl.duration(days=window_days)).alias("window_start"),
        (pl.col("start") - pl.duration(days=1)).alias("window_end"),
        "treated",
    )


def index_windows(
    riskset: pl.DataFrame, spell_starts: pl.DataFrame, window_days: int, outside_spell: bool
) -> pl.DataFrame:
    """Members for the index anchors (sets with a control): member_id, lopnr, window_start,
    window_end, set_id, treated (= the set's case). The window is the `window_days` days
    before the index; with `outside_spell` it ends the day before the member's own spell
    starts (empty when the spell began more than `window_days` before the index)."""
    with_control = riskset.filter(pl.len().over("set_id") > 1).join(
        spell_starts.select("spell_id", "start"), on="spell_id", how="left", maintain_order="left"
    )
    before_index = pl.col("index_date") - pl.duration(days=1)
    before_spell = pl.col("start") - pl.duration(days=1)
    return with_control.with_row_index("member_id").select(
        pl.col("member_id").cast(pl.Int64),
        "lopnr",
        (pl.col("index_date") - pl.duration(days=window_days)).alias("window_start"),
        (before_spell if outside_spell else before_index).alias("window_end"),
        "set_id",
        pl.col("case").alias("treated"),
    )


def bootstrap_medians(values: np.ndarray, draws: int, rng: np.random.Generator) -> np.ndarray:
    """`draws` bootstrap medians of `values` (same unit), resampling its frequency table."""
    if len(values) == 0:
        return np.full(draws, np.nan)
    distinct, counts = np.unique(values, return_counts=True)
    n = len(values)
    cum = np.cumsum(rng.multinomial(n, counts / n, size=draws), axis=1)
    lower = distinct[np.argmax(cum >= (n + 1) // 2, axis=1)]
    upper = distinct[np.argmax(cum >= n // 2 + 1, axis=1)]
    return (lower + upper) / 2


def _mean_ci(x: np.ndarray) -> tuple[float, float, float]:
    """Mean and its t-based 95 % CI (same unit as x)."""
    n = len(x)
    if n < 2:
        return (float(x.mean()) if n else math.nan, math.nan, math.nan)
    half = stats.t.ppf(0.975, n - 1) * x.std(ddof=1) / math.sqrt(n)
    return float(x.mean()), float(x.mean() - half), float(x.mean() + half)


def _welch(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Welch 95 % CI of mean(x) - mean(y) (same unit)."""
    vx, vy = x.var(ddof=1) / len(x), y.var(ddof=1) / len(y)
    df = (vx + vy) ** 2 / (vx**2 / (len(x) - 1) + vy**2 / (len(y) - 1))
    half = stats.t.ppf(0.975, df) * math.sqrt(vx + vy)
    d = x.mean() - y.mean()
    return float(d - half), float(d + half)


def _set_mean_ci(values: np.ndarray) -> tuple[float, float, float]:
    """Mean over sets of a per-set value and its normal 95 % CI (same unit)."""
    return (float(values.mean()), *_normal_ci(values))


def _normal_ci(d: np.ndarray) -> tuple[float, float]:
    """Normal 95 % CI of the mean of d, one value per set (same unit)."""
    half = Z95 * d.std(ddof=1) / math.sqrt(len(d))
    return float(d.mean() - half), float(d.mean() + half)


def compare(days: pl.DataFrame, anchor: str, draws: int, seed: int) -> list[dict[str, Any]]:
    """Rows (one per statistic) of treated vs control net days before `anchor`: values with
    95 % CIs, the difference (treated - control; days, or percentage points for shares) with
    its CI and method, group sizes. `days` has treated, net_days (and set_id when paired)."""
    x = days.filter("treated")["net_days"].to_numpy()
    y = days.filter(~pl.col("treated"))["net_days"].to_numpy()
    rng = np.random.default_rng(seed)
    med_x, med_y = bootstrap_medians(x, draws, rng), bootstrap_medians(y, draws, rng)
    any_x, any_y = int((x > 0).sum()), int((y > 0).sum())
    paired = anchor.startswith("index")
    if paired:
        per_set = (
            days.group_by("set_id")
            .agg(
                pl.col("net_days").filter(~pl.col("treated")).mean().alias("control_mean"),
                (pl.col("net_days") > 0).filter(~pl.col("treated")).mean().alias("control_any"),
                pl.col("net_days").filter("treated").first().alias("case_days"),
            )
            .sort("set_id")
        )
        case_days = per_set["case_days"].to_numpy()
        d_mean = case_days - per_set["control_mean"].to_numpy()
        d_any = (case_days > 0) - per_set["control_any"].to_numpy()
    rows = []
    for statistic in STATISTICS:
        if statistic == "mean":
            treated = _mean_ci(x)
            control = _mean_ci(y)
            if paired:
                control = _set_mean_ci(per_set["control_mean"].to_numpy())
                diff_ci, method = _normal_ci(d_mean), "paired within sets, normal"
            else:
                diff_ci, method = _welch(x, y), "Welch"
        elif statistic == "median":
            treated = (float(np.median(x)), *np.nanpercentile(med_x, [2.5, 97.5]))
            control = (float(np.median(y)), *np.nanpercentile(med_y, [2.5, 97.5]))
            diff_ci = tuple(np.nanpercentile(med_x - med_y, [2.5, 97.5]))
            method = f"bootstrap of each group, {draws} draws"
        else:
            treated = (100 * any_x / len(x), *(100 * b for b in wilson_ci(any_x, len(x))))
            control = (100 * any_y / len(y), *(100 * b for b in wilson_ci(any_y, len(y))))
            if paired:
                control = tuple(100 * v for v in _set_mean_ci(per_set["control_any"].to_numpy()))
                diff_ci, method = tuple(100 * b for b in _normal_ci(d_any)), "paired within sets"
            else:
                diff_ci = tuple(100 * b for b in newcombe_diff_ci(any_x, len(x), any_y, len(y)))
                method = "Newcombe"
        rows.append(
            {
                "anchor": anchor,
                "statistic": statistic,
                "unit": "percent" if statistic == "share_any" else "net days",
                "n_treated": len(x),
                "n_control": len(y),
                "treated": treated[0],
                "treated_ci_low": treated[1],
                "treated_ci_high": treated[2],
                "control": control[0],
                "control_ci_low": control[1],
                "control_ci_high": control[2],
                "difference": treated[0] - control[0],
                "diff_ci_low": float(diff_ci[0]),
                "diff_ci_high": float(diff_ci[1]),
                "diff_method": method,
            }
        )
    return rows
