"""Where the risk-set design's null-world deviation lies (issue 15; docs/methods.md,
"Simulation study"): with the planted effect off, cases and controls compared within
their matched sets (same start month and day t) and across sets at the same prior days
and diagnosis (the comparison the NB model's g-computation makes).

Per seed (`synth.seed` = 20260625 + i) the stages synth..nb_model run in a temporary
directory with the effect off and `riskset.control_mode` (default `not_yet_treated`);
the risk-set design's model rows (`models/nb_data.parquet`) are kept in memory. Then:

- within sets: case after_days minus each control's, all pairs and pairs of the same
  diagnosis group, by band of t (days);
- across sets: after_days treated minus untreated within diagnosis x 10-day prior-days
  bins, weighted by the bin's rows, by prior-days band.

    .venv/bin/python benchmarks/nb_bias_anatomy.py --seeds 20 --persons 50000
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import tempfile
from pathlib import Path

import polars as pl
from nb_simulation import EFFECT_OFF, FIRST_SEED, run_stages, seed_overrides  # a sibling

T_BANDS = [30, 60, 120, 180, 270, 365]
PRIOR_BANDS = [20, 45, 75, 105, 150, 210, 300]


def model_rows(seed: int, persons: int, mode: str) -> pl.DataFrame:
    """The risk-set design's model rows of one effect-off seed (rows with after_days)."""
    base = Path(tempfile.mkdtemp(prefix=f"anatomy_{seed}_"))
    try:
        overrides = [
            *seed_overrides(base, seed, persons),
            f"riskset.control_mode={mode}",
            *EFFECT_OFF,
        ]
        run_stages(
            ("synth", "stage", "spells", "exposure", "cohort", "riskset", "nb_model"), overrides
        )
        rows = pl.read_parquet(base / "outputs" / "models" / "nb_data.parquet")
        return rows.filter(pl.col("design") == "riskset").drop_nulls(
            ["after_days", "prior_days", "diagnosis_group"]
        )
    finally:
        shutil.rmtree(base, ignore_errors=True)


def band(column: str, edges: list[int]) -> pl.Expr:
    """The band of `column` (days) between `edges` as text that sorts in order ("0 <=30")."""
    inner = (f"{a + 1}-{b}" for a, b in itertools.pairwise(edges))
    names = [f"<={edges[0]}", *inner, f">{edges[-1]}"]
    labels = [f"{i} {name}" for i, name in enumerate(names)]
    return pl.col(column).cut(edges, labels=labels).cast(pl.String)


def mean_se(expr: pl.Expr) -> list[pl.Expr]:
    """Mean and its standard error (over rows) of `expr`, rounded to 0.01."""
    return [expr.mean().round(2).alias("mean"), (expr.std() / pl.len().sqrt()).round(2).alias("se")]


def within_sets(rows: pl.DataFrame) -> pl.DataFrame:
    """Case minus control after_days (days) per pair of a set, all and same diagnosis, by
    band of t; grain: t band x pairing."""
    keep = ["seed", "set_id", "after_days", "diagnosis_group"]
    case = rows.filter(pl.col("treated")).select(*keep, pl.col("gc001_day").alias("t"))
    ctrl = rows.filter(~pl.col("treated")).select(keep)
    pairs = case.join(ctrl, on=["seed", "set_id"], suffix="_c").with_columns(
        (pl.col("after_days") - pl.col("after_days_c")).alias("d"),
        band("t", T_BANDS).alias("t_band"),
    )
    same = pairs.filter(pl.col("diagnosis_group") == pl.col("diagnosis_group_c"))
    return pl.concat(
        [
            p.group_by("t_band")
            .agg(pl.len(), *mean_se(pl.col("d")))
            .with_columns(pl.lit(label).alias("pairs"))
            for label, p in (("all", pairs), ("same diagnosis", same))
        ]
    ).sort("pairs", "t_band")


def across_sets(rows: pl.DataFrame) -> pl.DataFrame:
    """Treated minus untreated after_days (days) within diagnosis x 10-day prior-days bins,
    averaged with the bins' rows as weights, by prior-days band; grain: prior band."""
    binned = rows.with_columns(
        band("prior_days", PRIOR_BANDS).alias("prior_band"),
        (pl.col("prior_days") // 10).alias("bin"),
    )
    arm = [pl.col("after_days").filter(pl.col("treated") == t) for t in (True, False)]
    cells = (
        binned.group_by("prior_band", "diagnosis_group", "bin")
        .agg(
            arm[0].mean().alias("m1"),
            arm[1].mean().alias("m0"),
            (arm[0].var() / arm[0].len()).alias("v1"),
            (arm[1].var() / arm[1].len()).alias("v0"),
            pl.len().alias("w"),
        )
        .drop_nulls()
    )
    return (
        cells.group_by("prior_band")
        .agg(
            (((pl.col("m1") - pl.col("m0")) * pl.col("w")).sum() / pl.col("w").sum())
            .round(2)
            .alias("mean"),
            (((pl.col("v1") + pl.col("v0")) * pl.col("w") ** 2).sum().sqrt() / pl.col("w").sum())
            .round(2)
            .alias("se"),
            pl.col("w").sum().alias("rows"),
        )
        .sort("prior_band")
    )


def main() -> None:
    """Run the seeds and print both comparisons."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=20)
    p.add_argument("--persons", type=int, default=50_000)
    p.add_argument("--mode", default="not_yet_treated")
    args = p.parse_args()
    rows = pl.concat(
        model_rows(FIRST_SEED + i, args.persons, args.mode).with_columns(pl.lit(i).alias("seed"))
        for i in range(args.seeds)
    )
    with pl.Config(tbl_rows=40):
        print(within_sets(rows))
        print(across_sets(rows))


if __name__ == "__main__":
    main()
