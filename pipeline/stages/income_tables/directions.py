"""The direction of every treated-vs-control comparison of the income tables (§10 item 40),
and the adjusted models' treatment effects beside the tables (§7)."""

from __future__ import annotations

import math
from typing import Any

import polars as pl

from pipeline.report.formatting import ALPHA, stars
from pipeline.report.labels import GROUP_LABEL
from pipeline.stats.proportions import newcombe_diff_ci, two_proportion_z

DIRECTION_SCHEMA = {
    "table": pl.String,
    "block": pl.String,
    "row": pl.String,
    "length_class": pl.String,
    "income": pl.String,
    "outcome": pl.String,
    "model": pl.String,
    "n_treated": pl.Int64,
    "n_control": pl.Int64,
    "percent_treated": pl.Float64,
    "percent_control": pl.Float64,
    "diff_pp": pl.Float64,
    "diff_ci_low": pl.Float64,
    "diff_ci_high": pl.Float64,
    "p_unadjusted": pl.Float64,
    "ame_pp": pl.Float64,
    "ame_ci_low": pl.Float64,
    "ame_ci_high": pl.Float64,
    "p_adjusted": pl.Float64,
    "p_value": pl.Float64,
    "stars": pl.String,
    "direction": pl.String,
    "significant_for": pl.String,
}


def adjusted_effects(models: pl.DataFrame, cells: pl.DataFrame) -> pl.DataFrame:
    """One row per model: treatment odds ratio and AME (pp) with 95 % CIs, p, stars and n
    (§7), whole: the gate hides a model's estimates when it hides a cell the model was
    fitted on (`same_model`)."""
    wide = (
        models.filter(pl.col("term").is_in(["treated", "OR(treated)", "AME_pp(treated)"]))
        .select(
            "model",
            "table",
            "income_group",
            "length_class",
            "outcome",
            "term",
            "estimate",
            "ci_low",
            "ci_high",
            "p_value",
            "n",
        )
        .pivot(
            on="term",
            index=["model", "table", "income_group", "length_class", "outcome", "n"],
            values=["estimate", "ci_low", "ci_high", "p_value"],
        )
    )
    renamed = wide.select(
        "model",
        "table",
        "income_group",
        "length_class",
        "outcome",
        "n",
        pl.col("estimate_OR(treated)").alias("odds_ratio"),
        pl.col("ci_low_OR(treated)").alias("or_ci_low"),
        pl.col("ci_high_OR(treated)").alias("or_ci_high"),
        pl.col("estimate_AME_pp(treated)").alias("ame_pp"),
        pl.col("ci_low_AME_pp(treated)").alias("ame_ci_low"),
        pl.col("ci_high_AME_pp(treated)").alias("ame_ci_high"),
        pl.col("p_value_treated").alias("p_value"),
    )
    return renamed.with_columns(
        pl.col("p_value").map_elements(stars, return_dtype=pl.String).fill_null("").alias("stars")
    )


def compare_shares(x1: int, n1: int, x2: int, n2: int) -> dict[str, Any]:
    """Treated x1/n1 vs control x2/n2: percents, difference and Newcombe 95 % CI (percentage
    points), pooled two-proportion z p-value and the direction of the difference."""
    lo, hi = newcombe_diff_ci(x1, n1, x2, n2)
    sign = x1 * n2 - x2 * n1  # exact: no rounding decides "equal"
    percent_treated, percent_control = 100 * x1 / n1, 100 * x2 / n2
    return {
        "n_treated": n1,
        "n_control": n2,
        "percent_treated": percent_treated,
        "percent_control": percent_control,
        "diff_pp": percent_treated - percent_control,
        "diff_ci_low": 100 * lo,
        "diff_ci_high": 100 * hi,
        "p_unadjusted": two_proportion_z(x1, n1, x2, n2),
        "direction": "treated higher" if sign > 0 else "treated lower" if sign < 0 else "equal",
    }


def significant_for(p: float | None, estimate: float | None) -> str:
    """Whom a difference favours at p < ALPHA (0.05): "treated", "controls", or "" (not
    significant, no p, or a zero estimate); `estimate` is the difference the p belongs to."""
    if p is None or estimate is None or not p < ALPHA or not estimate or math.isnan(estimate):
        return ""
    return "treated" if estimate > 0 else "controls"


def cell_directions(cells: pl.DataFrame, adjusted: pl.DataFrame, method: str) -> list[dict]:
    """One comparison per (table, block, row, length class) of B4, B5 and Table 3 (pp)."""
    ame = {r["model"]: r for r in adjusted.iter_rows(named=True)}
    shares = cells.filter(pl.col("row") != "n")
    out = []
    keys = ["table", "block", "row", "length_class"]
    for _, pair in shares.group_by(keys, maintain_order=True):
        by_group = {r["group"]: r for r in pair.iter_rows(named=True)}
        treated, control = by_group[GROUP_LABEL[True]], by_group[GROUP_LABEL[False]]
        row = {k: treated[k] for k in (*keys, "outcome", "model")}
        if not treated["n"] or not control["n"]:
            out.append(row)
            continue
        row |= compare_shares(treated["count"], treated["n"], control["count"], control["n"])
        model = ame.get(treated["model"]) or {}
        row |= {
            "ame_pp": model.get("ame_pp"),
            "ame_ci_low": model.get("ame_ci_low"),
            "ame_ci_high": model.get("ame_ci_high"),
            "p_adjusted": treated["p_adjusted"],
            "p_value": treated["p_value"],
            "stars": treated["stars"],
        }
        tested = row["ame_pp"] if method == "adjusted_logit" else row["diff_pp"]
        row["significant_for"] = significant_for(row["p_value"], tested)
        out.append(row)
    return out


def b6_directions(b6: pl.DataFrame) -> list[dict]:
    """One comparison per (block, category, income group) of Table B6: the category's share of
    the block total, treated vs control (pp), with the z p-value (no model)."""
    out = []
    for (block, category, income), pair in b6.group_by(
        ["block", "category", "income"], maintain_order=True
    ):
        by_group = {r["group"]: r for r in pair.iter_rows(named=True)}
        treated, control = by_group[GROUP_LABEL[True]], by_group[GROUP_LABEL[False]]
        row: dict[str, Any] = {"table": "B6", "block": block, "row": category, "income": income}
        if not treated["block_total"] or not control["block_total"]:
            out.append(row)
            continue
        x1, n1 = treated["n"], treated["block_total"]
        row |= compare_shares(x1, n1, control["n"], control["block_total"])
        row |= {"p_value": row["p_unadjusted"], "stars": ""}
        row["significant_for"] = significant_for(row["p_value"], row["diff_pp"])
        out.append(row)
    return out


def income_directions(
    cells: pl.DataFrame, adjusted: pl.DataFrame, b6: pl.DataFrame, method: str
) -> pl.DataFrame:
    """Every treated-vs-control comparison of B4, B5, Table 3 and B6 (§10 item 40): percents,
    difference with Newcombe 95 % CI and adjusted AME with CI (percentage points), p-values.

    `cells` are the tidy cells (`b4_b5_table3` with significance), `adjusted` is
    `adjusted_effects`, `b6` is `table_b6`. `p_value` is the p the stars use
    (`method`; for B6 the z test) and `significant_for` says whom the difference
    favours at p < 0.05 (ALPHA), by the sign of the estimate that p tests (the AME for
    `adjusted_logit`, else the raw difference; for B6 the group with the larger share).
    `direction` is the sign of the raw difference. `p_adjusted` is the treatment
    coefficient's Wald p (as in income_adjusted.csv), the AME CI the delta-method Wald
    CI, so near 0.05 the two can disagree. Written whole: the gate hides a comparison's
    values with the cells it hides.
    """
    rows = [*cell_directions(cells, adjusted, method), *b6_directions(b6)]
    filled = [{"stars": "", "direction": "", "significant_for": "", **r} for r in rows]
    return pl.DataFrame(filled, schema=DIRECTION_SCHEMA)
