"""The written table CSVs as the report reads them: cells as text, single values and the key
metrics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from pipeline.report.labels import ALL_LENGTHS, GROUP_LABEL, TOTAL

EXTRAPOLATED_RESULTS = (
    "extra_days",
    "std_err",
    "ci_low",
    "ci_high",
    "mean_treated",
    "mean_control",
)


def read_table(path: Path) -> pl.DataFrame:
    """A table CSV with every column as text, as written, except that a row marked
    `extrapolated = true` (outside the observed support) has its results blanked: the
    report never prints an extrapolated estimate (analysis-spec.md §6.5, issue 15)."""
    frame = pl.read_csv(path, infer_schema_length=0)
    if "extrapolated" not in frame.columns:
        return frame
    outside = pl.col("extrapolated") == "true"
    return frame.with_columns(
        pl.when(outside).then(pl.lit("")).otherwise(pl.col(c)).alias(c)
        for c in EXTRAPOLATED_RESULTS
        if c in frame.columns
    )


def table_row(frame: pl.DataFrame, **where: str) -> dict[str, str]:
    """The one row of a text table whose columns equal `where` ({} when none or several)."""
    rows = frame.filter(pl.all_horizontal(pl.col(k) == v for k, v in where.items()))
    return rows.row(0, named=True) if rows.height == 1 else {}


def table_value(frame: pl.DataFrame, column: str, **where: str) -> float | None:
    """One numeric cell of a text table (None when missing or suppressed)."""
    value = table_row(frame, **where).get(column)
    return None if value in (None, "", "..") else float(value)


def key_metrics(tables_dir: Path) -> dict[str, Any]:
    """Key estimates for `dvc metrics show` / `dvc exp show` (rounded, suppressed cells as null)."""
    split = read_table(tables_dir / "ownership_split.csv")
    timing = read_table(tables_dir / "gc001_timing.csv")
    fk = read_table(tables_dir / "fk_registrations.csv")
    adjusted = read_table(tables_dir / "income_adjusted.csv")
    metrics: dict[str, Any] = {
        "persons_treated": table_value(split, "n", group=GROUP_LABEL[True], ownership=TOTAL),
        "persons_control": table_value(split, "n", group=GROUP_LABEL[False], ownership=TOTAL),
        "first_gc001_mean_day": table_value(timing, "mean_days", unit="spells"),
        "first_gc001_median_day": table_value(timing, "median_days", unit="spells"),
        "any_fk_treated_pct": table_value(
            fk, "percent", registration="any_fk", group=GROUP_LABEL[True]
        ),
        "any_fk_control_pct": table_value(
            fk, "percent", registration="any_fk", group=GROUP_LABEL[False]
        ),
    }
    for model, key in (
        (f"B4/B5|income_before|{ALL_LENGTHS}|any_income_12", "ame_pp_any_income_12_income_before"),
        (f"B4/B5|income_before|{ALL_LENGTHS}|regained_12", "ame_pp_regained_12_income_before"),
        (f"Table 3|income_before|{ALL_LENGTHS}|durable_any", "ame_pp_durable_any_income_before"),
    ):
        metrics[key] = table_value(adjusted, "ame_pp", model=model)
    for file, prefix in (
        ("nb_extra_days.csv", "nb_extra_days"),
        ("nb_extra_days_fractional.csv", "fractional_extra_days"),
    ):
        extra = read_table(tables_dir / file)
        for design in ("riskset", "report"):
            for prior in ("0.0", "180.0"):
                key = f"{prefix}_{design}_prior_{prior.split('.')[0]}"
                metrics[key] = table_value(extra, "extra_days", design=design, prior_days=prior)
    rank = read_table(tables_dir / "gc001_length_rank.csv")
    primary = rank["design"][0] if rank.height else ""
    metrics["length_rank_gehan_z"] = table_value(rank, "gehan_z", design=primary)
    metrics["length_rank_gehan_p"] = table_value(rank, "gehan_p", design=primary)
    return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in metrics.items()}
