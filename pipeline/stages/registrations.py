"""`registrations` stage: FK registrations during the spell (§8.2, report §5.3) and
registered vs reported GC001 counts per region (§8.1, report §3.5).

Shares carry Wilson 95 % CIs and, for treated vs control, a two-proportion z
test and Newcombe's CI of the difference. The tables are written whole under
`outputs/results/`; the publication gate (stage `publish`) hides small counts and what is
built on them, and draws Figure 5 from what it may show.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import polars as pl

from pipeline.core import config, io, sql
from pipeline.report.labels import GROUP_LABEL
from pipeline.stats.proportions import newcombe_diff_ci, two_proportion_z, wilson_ci

log = logging.getLogger(__name__)

HALF_YEARS = ((0, 182, "0–182"), (183, 364, "183–364"), (365, 547, "365–547"), (548, None, "548–"))


def unit_spells(cohort: pl.DataFrame, unit: str) -> pl.DataFrame:
    """The spells §5.3 is computed on: Table 2's person rows (`person_row`) or all cohort spells."""
    config.check_choices({"fk.unit": (unit, ("person_row", "all_spells"))})
    return cohort.filter("person_row") if unit == "person_row" else cohort


def registrations_in_spells(spells: pl.DataFrame, events: pl.DataFrame | Path) -> pl.DataFrame:
    """One row per FK registration inside a spell: spell_id, handelse, datum, day (0-based)."""
    return sql.query(
        "registrations_fk",
        {},
        spells=spells.select("spell_id", "lopnr", "start", "end"),
        events=events,
    )


def share_rows(
    spells: pl.DataFrame, found: pl.DataFrame, kinds: list[str], any_kinds: list[str]
) -> pl.DataFrame:
    """Per registration kind (and `any_fk`): n, count, percent, CI per group, z-test p and
    the treated − control difference with Newcombe's CI (percentage points)."""
    flags = spells.select("spell_id", "treated")
    for kind in [*kinds, "any_fk"]:
        members = any_kinds if kind == "any_fk" else [kind]
        hit = found.filter(pl.col("handelse").is_in(members))["spell_id"].unique()
        flags = flags.with_columns(pl.col("spell_id").is_in(hit.implode()).alias(kind))
    rows = []
    for kind in [*kinds, "any_fk"]:
        counts = {}
        for treated, label in GROUP_LABEL.items():
            part = flags.filter(pl.col("treated") == treated)[kind]
            counts[label] = (int(part.sum()), part.len())
        (x1, n1), (x2, n2) = counts[GROUP_LABEL[True]], counts[GROUP_LABEL[False]]
        p = two_proportion_z(x1, n1, x2, n2) if n1 and n2 else math.nan
        lo_d, hi_d = newcombe_diff_ci(x1, n1, x2, n2) if n1 and n2 else (math.nan, math.nan)
        for label, (x, n) in counts.items():
            lo, hi = wilson_ci(x, n) if n else (math.nan, math.nan)
            rows.append(
                {
                    "registration": kind,
                    "group": label,
                    "n": n,
                    "count": x,
                    "percent": 100 * x / n if n else math.nan,
                    "ci_low": 100 * lo,
                    "ci_high": 100 * hi,
                    "diff_pp": 100 * (x1 / n1 - x2 / n2) if n1 and n2 else math.nan,
                    "diff_ci_low": 100 * lo_d,
                    "diff_ci_high": 100 * hi_d,
                    "p_value": p,
                }
            )
    return pl.DataFrame(rows)


def timing_rows(spells: pl.DataFrame, found: pl.DataFrame) -> pl.DataFrame:
    """Per registration kind and group, over the spells with one (`n`, the same spells as
    `share_rows`' count): day of the spell's first registration of that kind (mean,
    median), share by half-year, and for the treated the median days from first GC001."""
    first = found.group_by("spell_id", "handelse").agg(pl.col("day").min())
    joined = first.join(spells.select("spell_id", "treated", "day_first_gc001"), on="spell_id")
    band = pl.lit(None, pl.String)
    for lo, hi, label in reversed(HALF_YEARS):
        inside = pl.col("day") >= lo if hi is None else pl.col("day").is_between(lo, hi)
        band = pl.when(inside).then(pl.lit(label)).otherwise(band)
    joined = joined.with_columns(
        band.alias("half_year"),
        pl.col("treated").replace_strict(GROUP_LABEL, return_dtype=pl.String).alias("group"),
    )
    stats = joined.group_by("handelse", "group").agg(
        pl.len().alias("n"),
        pl.col("day").mean().alias("mean_day"),
        pl.col("day").median().alias("median_day"),
        (pl.col("day") - pl.col("day_first_gc001")).median().alias("median_days_after_first_gc001"),
        *(
            (pl.col("half_year") == label).mean().alias(f"share_{label}")
            for _, _, label in HALF_YEARS
        ),
    )
    return stats.sort("handelse", "group")


def spell_length_table(
    cohort: pl.DataFrame,
    found: pl.DataFrame,
    primary_care_controls: pl.Series,
    any_kinds: list[str],
    primary_care: str,
) -> pl.DataFrame:
    """§5.8: mean and median gross days by GC001 x any FK meeting/plan, primary-care sick leave
    (proxy: treated with first GC001 in care level `primary_care`; controls with a
    primary-care contact around the start)."""
    any_fk = found.filter(pl.col("handelse").is_in(any_kinds))["spell_id"].unique()
    in_primary = (
        pl.when(pl.col("treated"))
        .then(pl.col("vardniva_first") == primary_care)
        .otherwise(pl.col("spell_id").is_in(primary_care_controls.implode()))
    )
    rows = cohort.filter(in_primary).with_columns(
        pl.col("spell_id").is_in(any_fk.implode()).alias("any_fk"),
        pl.col("treated").replace_strict(GROUP_LABEL, return_dtype=pl.String).alias("group"),
    )
    return (
        rows.group_by("group", "any_fk")
        .agg(
            pl.len().alias("n"),
            pl.col("gross_days").mean().alias("mean_gross_days"),
            pl.col("gross_days").median().alias("median_gross_days"),
            pl.col("censored").sum().alias("n_censored"),
        )
        .sort("group", "any_fk", descending=[False, True])
    )


def registered_vs_reported(
    registered: pl.DataFrame,
    survey: pl.DataFrame,
    regions: dict[str, str],
    min_share: float,
    primary_care: str,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Per region and year: register count (all and in care level `primary_care`), survey
    count, ratio; and
    per region the exclusion rule of §8.1 (no primary-care GC001, or register < min_share of
    the survey in the survey years)."""
    per_year = registered.group_by("region", "year").agg(
        pl.col("n_contacts").sum().alias("registered"),
        pl.col("n_contacts")
        .filter(pl.col("vardniva") == primary_care)
        .sum()
        .alias("registered_primary_care"),
    )
    grid = pl.DataFrame(
        [(r, y) for r in regions for y in range(2019, 2025)],
        schema=["region", "year"],
        orient="row",
    ).with_columns(pl.col("year").cast(pl.Int32))
    table = (
        grid.join(
            per_year.with_columns(pl.col("year").cast(pl.Int32)), on=["region", "year"], how="left"
        )
        .join(
            survey.select("region", pl.col("ar").cast(pl.Int32).alias("year"), "antal_insatser"),
            on=["region", "year"],
            how="left",
        )
        .with_columns(
            pl.col("registered", "registered_primary_care").fill_null(0),
            pl.col("region").replace_strict(regions, return_dtype=pl.String).alias("region_name"),
        )
        .with_columns((pl.col("registered") / pl.col("antal_insatser")).alias("register_share"))
        .sort("region", "year")
    )
    surveyed = table.filter(pl.col("antal_insatser").is_not_null())
    rule = (
        table.group_by("region", "region_name")
        .agg(pl.col("registered_primary_care").sum().alias("registered_primary_care"))
        .join(
            surveyed.group_by("region").agg(
                pl.col("registered").sum().alias("registered_survey_years"),
                pl.col("antal_insatser").sum().alias("reported_survey_years"),
            ),
            on="region",
            how="left",
        )
        .with_columns(
            (pl.col("registered_survey_years") / pl.col("reported_survey_years")).alias(
                "register_share"
            )
        )
        .with_columns(
            pl.when(pl.col("registered_primary_care") == 0)
            .then(pl.lit("no primary-care GC001 in the register"))
            .when(pl.col("register_share") < min_share)
            .then(pl.lit(f"register < {min_share:.0%} of the survey"))
            .otherwise(pl.lit(None, pl.String))
            .alias("drop_reason")
        )
        .sort("region")
    )
    return table, rule


def change_2023_2024(table: pl.DataFrame) -> pl.DataFrame:
    """Per region: register and survey counts 2023 and 2024 and their change (percent)."""
    wide = table.filter(pl.col("year").is_in([2023, 2024])).pivot(
        on="year", index=["region", "region_name"], values=["registered", "antal_insatser"]
    )
    return wide.with_columns(
        (100 * (pl.col("registered_2024") / pl.col("registered_2023") - 1)).alias(
            "registered_change_pct"
        ),
        (100 * (pl.col("antal_insatser_2024") / pl.col("antal_insatser_2023") - 1)).alias(
            "reported_change_pct"
        ),
    ).sort("region")


def run(cfg: Any) -> None:
    """Write the §5.3 tables and the §3.5 register-vs-survey tables, whole, to outputs/results."""
    outputs = config.resolve_path(cfg.paths.outputs)
    staged = config.resolve_path(cfg.paths.staged)
    tables = outputs / "results"
    kinds = [str(k) for k in cfg.fk.kinds]
    any_kinds = [str(k) for k in cfg.fk.any_fk]
    cohort = pl.read_parquet(outputs / "cohort.parquet")
    spells = unit_spells(cohort, str(cfg.fk.unit))
    found = registrations_in_spells(spells, staged / "fk_handelser.parquet")

    shares = share_rows(spells, found, kinds, any_kinds)
    io.write_csv(shares, tables / "fk_registrations.csv")
    io.write_csv(timing_rows(spells, found), tables / "fk_timing.csv")
    controls = cohort.filter(~pl.col("treated")).select("spell_id", "lopnr", "start")
    primary_care = str(cfg.codes.primary_care)
    params = {
        "days_before": int(cfg.fk.primary_care_days_before),
        "days_after": int(cfg.fk.primary_care_days_after),
        "primary_care": primary_care,
    }
    primary = sql.query(
        "registrations_primary_care",
        params,
        spells=controls,
        contacts=staged / "vardkontakter.parquet",
    )["spell_id"]
    all_found = registrations_in_spells(cohort, staged / "fk_handelser.parquet")
    lengths = spell_length_table(cohort, all_found, primary, any_kinds, primary_care)
    io.write_csv(lengths, tables / "fk_spell_length.csv")

    codes = [str(c).upper() for c in cfg.exposure.codes]
    registered = sql.query(
        "registrations_regions",
        {"codes": codes, "first_year": 2019, "last_year": 2024},
        contacts=staged / "vardkontakter.parquet",
    )
    survey = pl.read_parquet(staged / "regionenkat.parquet")
    regions = {str(k): str(v) for k, v in cfg.codes.regions.items()}
    table, rule = registered_vs_reported(
        registered, survey, regions, float(cfg.regions.min_register_share), primary_care
    )
    rule = rule.with_columns(
        pl.col("region").is_in(list(cfg.cohort.regions)).alias("in_cohort_regions")
    )
    io.write_csv(table, tables / "registered_vs_reported.csv")
    io.write_csv(rule, tables / "region_exclusion.csv")
    io.write_csv(change_2023_2024(table), tables / "region_change_2023_2024.csv")
    any_row = shares.filter(pl.col("registration") == "any_fk")
    log.info(
        "FK registrations on %d spells (%s): any meeting/plan %s; regions the rule would drop: %s",
        spells.height,
        cfg.fk.unit,
        ", ".join(
            f"{r['group']} {r['percent']:.1f} %"
            for r in any_row.iter_rows(named=True)
            if r["percent"] is not None
        ),
        ", ".join(
            rule.filter(
                pl.col("drop_reason").is_not_null() & pl.col("registered_primary_care").gt(0)
            )["region"]
        )
        or "none",
    )
