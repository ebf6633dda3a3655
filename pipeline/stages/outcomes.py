"""`outcomes` stage: return-to-income outcomes per cohort spell (analysis-spec.md §4.4).

DuckDB (`sql/outcomes_income.sql`) joins each spell to the sparse person-month
income: the reference months before the start, the first months with any /
regained income after the end, and the longest run of qualifying months in the
durable window. Polars then turns those into the outcome flags under the
configured rules; a window not fully inside AGI coverage gives a missing
outcome, never "no income".
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from pipeline.core import config, io, sql
from pipeline.core.errors import PipelineError
from pipeline.rules.months import month_index

log = logging.getLogger(__name__)

FAR = 10_000  # months: "to the data end" as a window length
COHORT_COLUMNS = [
    "spell_id", "lopnr", "start", "end", "gross_days", "censored", "treated",
    "income_row", "employed_at_start", "length_class", "sex", "age", "age_band",
    "diagnosis_group", "education_group", "insured_type_group", "forsakradtyp", "lan",
]  # fmt: skip


@dataclass(frozen=True)
class OutcomeConfig:
    """The `income` and `table3` slices of the configuration (conf/analysis/report.yaml)."""

    first_index: int
    last_index: int
    reference_months: int
    min_sek: float
    share: float
    windows: tuple[int, ...]
    window_offset: int
    mean_of_window: bool
    regained_requires: str
    unobserved_zero: bool
    durable_months: int
    durable_start: int
    durable_to_data_end: bool
    end_years: tuple[int, ...]
    table3_end_years: tuple[int, ...]

    @classmethod
    def from_config(cls, cfg: Any) -> OutcomeConfig:
        """Build from the composed configuration, checking the enumerated choices."""
        inc = cfg.income
        choices = {
            "income.window_start": (inc.window_start, {"next", "end_month"}),
            "income.regained_rule": (inc.regained_rule, {"any_month", "mean_of_window"}),
            "income.regained_requires": (
                inc.regained_requires,
                {"complete_reference", "all_three_positive", "none"},
            ),
            "income.unobserved": (inc.unobserved, {"missing", "zero"}),
            "income.durable_window": (inc.durable_window, {"fixed_12", "to_data_end"}),
        }
        config.check_choices(choices)
        end_years = tuple(int(y) for y in inc.end_years)
        table3_end_years = tuple(int(y) for y in cfg.table3.end_years)
        if not set(table3_end_years) <= set(end_years):
            # Table 3 follows some of B4/B5's persons longer; the publication gate counts
            # them among B4/B5's, which holds only if its years are among theirs
            raise PipelineError(
                f"config table3.end_years={list(table3_end_years)}: expected years among "
                f"income.end_years={list(end_years)} (Table 3's persons are B4/B5's)"
            )
        return cls(
            first_index=month_index(int(inc.first_month)),
            last_index=month_index(int(inc.last_month)),
            reference_months=int(inc.reference_months),
            min_sek=float(inc.any_income_min_sek),
            share=float(inc.regained_share),
            windows=tuple(int(w) for w in inc.windows),
            window_offset=1 if inc.window_start == "next" else 0,
            mean_of_window=inc.regained_rule == "mean_of_window",
            regained_requires=str(inc.regained_requires),
            unobserved_zero=inc.unobserved == "zero",
            durable_months=int(inc.durable_months),
            durable_start=int(inc.durable_start_months),
            durable_to_data_end=inc.durable_window == "to_data_end",
            end_years=end_years,
            table3_end_years=table3_end_years,
        )

    def sql_params(self) -> dict[str, Any]:
        """The $params of sql/outcomes_income.sql."""
        return {
            "first_index": self.first_index,
            "last_index": self.last_index,
            "ref_months": self.reference_months,
            "window_offset": self.window_offset,
            "max_window": max(self.windows),
            "share": self.share,
            "min_sek": self.min_sek,
            "unobserved_zero": self.unobserved_zero,
            "durable_start": self.durable_start,
            "durable_length": FAR if self.durable_to_data_end else 12,
        }


def income_measures(
    spells: pl.DataFrame, income: pl.DataFrame | Path, conf: OutcomeConfig
) -> pl.DataFrame:
    """One row per spell: reference income and the first qualifying months (see the SQL)."""
    return sql.query(
        "outcomes_income",
        conf.sql_params(),
        spells=spells.select("spell_id", "lopnr", "start", "end"),
        income=income,
    )


def outcome_flags(measures: pl.DataFrame, conf: OutcomeConfig) -> pl.DataFrame:
    """Outcome columns from the measures: `ref_complete`, `any_income_X`, `regained_X`,
    `durable_any`, `durable_regained` (bool, null = not observable or not applicable)."""
    ref_complete = (
        pl.lit(True)
        if conf.unobserved_zero
        else (pl.col("ref_months_observed") == conf.reference_months)
    )
    requirement = {
        "complete_reference": pl.col("income_before").fill_null(False) & ref_complete,
        "all_three_positive": pl.col("ref_positive_months") == conf.reference_months,
        "none": pl.col("ref_income_sek") > 0,
    }[conf.regained_requires]
    threshold = conf.share * pl.col("ref_income_sek")
    flags = [ref_complete.alias("ref_complete"), requirement.alias("regained_applies")]
    for months in conf.windows:
        observed = pl.col("f_index") + months - 1 <= conf.last_index
        any_income = pl.col("first_income_k").fill_null(FAR) < months
        if conf.mean_of_window:
            regained = pl.col(f"window_sum_{months}") / months >= threshold
        else:
            regained = pl.col("first_regained_k").fill_null(FAR) < months
        flags += [
            pl.when(observed).then(any_income).alias(f"any_income_{months}"),
            pl.when(observed & requirement).then(regained).alias(f"regained_{months}"),
        ]
    durable_end = (
        pl.lit(conf.last_index)
        if conf.durable_to_data_end
        else (pl.col("f_index") + conf.durable_start + 12 - 1)
    )
    durable_needed = pl.col("f_index") + conf.durable_start + conf.durable_months - 1
    durable_observed = (durable_end <= conf.last_index) & (durable_needed <= conf.last_index)
    flags += [
        pl.when(durable_observed)
        .then(pl.col("durable_any_run") >= conf.durable_months)
        .alias("durable_any"),
        pl.when(durable_observed & requirement)
        .then(pl.col("durable_regained_run") >= conf.durable_months)
        .alias("durable_regained"),
    ]
    if conf.mean_of_window:
        measures = window_sums(measures, conf.windows)
    return measures.with_columns(flags)


def window_sums(measures: pl.DataFrame, windows: tuple[int, ...]) -> pl.DataFrame:
    """Measures with `window_sum_X` (SEK): income summed over the first X months after the spell."""
    rows = (
        measures.select("spell_id", "window_k", "window_income_sek")
        .explode("window_k", "window_income_sek")
        .drop_nulls("window_k")
    )
    sums = rows.group_by("spell_id").agg(
        pl.col("window_income_sek")
        .filter(pl.col("window_k") < months)
        .sum()
        .alias(f"window_sum_{months}")
        for months in windows
    )
    return measures.join(sums, on="spell_id", how="left").with_columns(
        pl.col(f"window_sum_{m}").fill_null(0) for m in windows
    )


def population_flags(frame: pl.DataFrame, conf: OutcomeConfig) -> pl.DataFrame:
    """`end_year`, `in_income_tables` (B4-B6, Figs 13-14) and `in_table3` (§4.4, §4.9):
    the person's income row, employed at start, ended (not censored) in the configured years."""
    base = pl.col("income_row") & pl.col("employed_at_start") & ~pl.col("censored")
    end_year = pl.col("end").dt.year()
    return frame.with_columns(
        end_year.alias("end_year"),
        (base & end_year.is_in(conf.end_years)).alias("in_income_tables"),
        (base & end_year.is_in(conf.table3_end_years)).alias("in_table3"),
    )


def build_outcomes(
    cohort: pl.DataFrame, income: pl.DataFrame | Path, conf: OutcomeConfig
) -> pl.DataFrame:
    """One row per cohort spell: the cohort columns the income tables use, and every outcome."""
    measures = outcome_flags(income_measures(cohort, income, conf), conf)
    keep = [c for c in measures.columns if c not in ("window_k", "window_income_sek")]
    return population_flags(
        cohort.select(COHORT_COLUMNS).join(measures.select(keep), on="spell_id", how="left"), conf
    ).sort("spell_id")


def run(cfg: Any) -> None:
    """Read the cohort and monthly income; write outputs/outcomes.parquet."""
    conf = OutcomeConfig.from_config(cfg)
    outputs = config.resolve_path(cfg.paths.outputs)
    cohort = pl.read_parquet(outputs / "cohort.parquet")
    outcomes = build_outcomes(cohort, outputs / "income_monthly.parquet", conf)
    io.write_parquet(outcomes, outputs / "outcomes.parquet")
    population = outcomes.filter("in_income_tables")
    log.info(
        "outcomes for %d spells; income tables: %d persons (%d treated), %d with income before, "
        "%d without, %d unknown",
        outcomes.height,
        population.height,
        population["treated"].sum(),
        population["income_before"].sum(),
        population["no_income_before"].sum(),
        population["income_before"].null_count(),
    )
