"""`cohort` stage: the study population, treated vs control, covariates and table units.

Filters follow analysis-spec.md §1 in order; after each one the attrition flow
records spells and persons left, split by GC001 exposure, so that an auditor
can go from the delivery's row counts to every table's n (`outputs/attrition.csv`).
Covariates come from `bakgrund` in the covariate year (§3.4-3.5); the unit
flags pick one spell per person for Table 2/B3 (`person_row`) and for the income
tables (`income_row`). `outputs/cohort_at_risk.parquet` keeps the spells before
the three filters that select on exposure or length, for the GC001 life table,
and flags those that pass every filter but the 30-day rule (the risk set's pool
of controls of any length).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from pipeline.core import config, io, sql
from pipeline.report.labels import LENGTH_CLASSES
from pipeline.rules.regions import REGION_BASES, region_of

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CohortConfig:
    """The `cohort`, `covariates`, `ownership` and `income.employed_types` slices."""

    window_start: dt.date
    window_end: dt.date
    window_rule: str
    age_min: int
    age_max: int
    regions: tuple[str, ...]
    region_basis: str
    min_control_spell_days: int
    min_days_applies_to: str
    gc001_outside_spell: str
    exclude_insured_types: tuple[str, ...]
    year_basis: str
    education_fallback: str
    control_lookback_days: int
    employed_types: tuple[str, ...]
    long_days: int
    intervention_codes: tuple[str, ...]
    care_level_groups: Mapping[str, str]  # codes.care_level_groups (§3.3)
    primary_care: str  # codes.primary_care
    unknown_ownership: str  # codes.unknown_ownership

    @classmethod
    def from_config(cls, cfg: Any) -> CohortConfig:
        """Build from the composed configuration, checking the enumerated choices."""
        c = cfg.cohort
        conf = cls(
            window_start=dt.date.fromisoformat(str(c.window_start)),
            window_end=dt.date.fromisoformat(str(c.window_end)),
            window_rule=str(c.window_rule),
            age_min=int(c.age_min),
            age_max=int(c.age_max),
            regions=tuple(str(r) for r in c.regions),
            region_basis=str(c.region_basis),
            min_control_spell_days=int(c.min_control_spell_days),
            min_days_applies_to=str(c.min_days_applies_to),
            gc001_outside_spell=str(c.gc001_outside_spell),
            exclude_insured_types=tuple(str(t) for t in c.exclude_insured_types),
            year_basis=str(cfg.covariates.year_basis),
            education_fallback=str(cfg.covariates.education_fallback),
            control_lookback_days=int(cfg.ownership.control_lookback_days),
            employed_types=tuple(str(t) for t in cfg.income.employed_types),
            long_days=int(cfg.spells.long_days),
            intervention_codes=tuple(str(x).upper() for x in cfg.exposure.codes),
            care_level_groups={str(k): str(v) for k, v in cfg.codes.care_level_groups.items()},
            primary_care=str(cfg.codes.primary_care),
            unknown_ownership=str(cfg.codes.unknown_ownership),
        )
        choices = {
            "cohort.window_rule": (conf.window_rule, {"start", "overlap"}),
            "cohort.region_basis": (conf.region_basis, set(REGION_BASES)),
            "cohort.min_days_applies_to": (conf.min_days_applies_to, {"controls", "both"}),
            "cohort.gc001_outside_spell": (conf.gc001_outside_spell, {"exclude", "control"}),
            "covariates.year_basis": (conf.year_basis, {"start", "end"}),
            "covariates.education_fallback": (conf.education_fallback, {"last_known", "none"}),
        }
        config.check_choices(choices)
        return conf


def attach_background(
    spells: pl.LazyFrame, bakgrund: pl.LazyFrame, year_basis: str, education_fallback: str
) -> pl.LazyFrame:
    """Spells with `cov_year` and that year's (or the nearest earlier) background row.

    Spells without any background row up to their covariate year get nulls.
    Education is the last non-missing level up to the covariate year
    (`last_known`) or that row's own value (`none`).
    """
    year_of = pl.col("start") if year_basis == "start" else pl.col("end")
    base = spells.with_columns(year_of.dt.year().cast(pl.Int16).alias("cov_year")).sort("cov_year")
    rows = bakgrund.select(
        "lopnr", pl.col("ar").alias("bg_year"), "kon", "fodelsear", "fodelseland",
        "civilstand", "lan", "sun2000niva",
    ).sort("bg_year")  # fmt: skip
    out = base.join_asof(
        rows,
        left_on="cov_year",
        right_on="bg_year",
        by="lopnr",
        strategy="backward",
        check_sortedness=False,
    )
    if education_fallback == "last_known":
        known = (
            bakgrund.filter(pl.col("sun2000niva").is_not_null())
            .select("lopnr", pl.col("ar").alias("edu_year"), pl.col("sun2000niva").alias("_edu"))
            .sort("edu_year")
        )
        out = (
            out.join_asof(
                known,
                left_on="cov_year",
                right_on="edu_year",
                by="lopnr",
                strategy="backward",
                check_sortedness=False,
            )
            .with_columns(pl.col("_edu").alias("sun2000niva"))
            .drop("_edu", "edu_year")
        )
    return out


def _group_of(value: pl.Expr, groups: dict[str, list[Any]], missing: str | None = None) -> pl.Expr:
    """The group label of each value from {label: [values]}; `missing` when none matches."""
    mapping = {str(v): label for label, values in groups.items() for v in values}
    return value.cast(pl.String).replace_strict(mapping, default=missing, return_dtype=pl.String)


def add_covariates(frame: pl.LazyFrame, codes: Any, conf: CohortConfig) -> pl.LazyFrame:
    """Covariate columns (printed labels from the code lists, analysis-spec.md §9)."""
    age = (pl.col("cov_year").cast(pl.Int32) - pl.col("fodelsear").cast(pl.Int32)).alias("age")
    band = pl.lit(None, dtype=pl.String)
    for b in reversed(list(codes.age_bands)):
        band = (
            pl.when(pl.col("age").is_between(b["min"], b["max"]))
            .then(pl.lit(b["label"]))
            .otherwise(band)
        )
    missing = str(codes.diagnosis_missing)
    return frame.with_columns(age).with_columns(
        band.alias("age_band"),
        _group_of(pl.col("kon"), {v: [k] for k, v in codes.sex.items()}).alias("sex"),
        _group_of(pl.col("fodelseland"), dict(codes.birth_country_groups)).alias(
            "birth_country_group"
        ),
        _group_of(pl.col("civilstand"), dict(codes.civil_status_groups)).alias(
            "civil_status_group"
        ),
        _group_of(pl.col("sun2000niva"), dict(codes.education_groups), missing).alias(
            "education_group"
        ),
        _group_of(pl.col("forsakradtyp"), dict(codes.insured_type_groups)).alias(
            "insured_type_group"
        ),
        pl.col("forsakradtyp").is_in(conf.employed_types).alias("employed_at_start"),
        pl.when(pl.col("gross_days") < conf.long_days)
        .then(pl.lit(LENGTH_CLASSES[0]))
        .otherwise(pl.lit(LENGTH_CLASSES[1]))
        .alias("length_class"),
        (pl.col("start") < pl.lit(conf.window_start)).alias("left_truncated"),
        pl.col("vardniva_first")
        .cast(pl.String)
        .replace_strict(conf.care_level_groups, default=None, return_dtype=pl.String)
        .alias("care_level_group"),
    )


def count_step(frame: pl.DataFrame, step: str, description: str) -> dict[str, Any]:
    """One attrition row: spells and persons left, split by GC001 in the spell / person."""
    person = frame.group_by("lopnr").agg(pl.col("treated").any())
    return {
        "step": step,
        "description": description,
        "n_spells": frame.height,
        "n_persons": person.height,
        "n_spells_treated": int(frame["treated"].sum()),
        "n_persons_treated": int(person["treated"].sum()),
        "n_spells_control": int((~frame["treated"]).sum()),
        "n_persons_control": int((~person["treated"]).sum()),
    }


def population_filters(
    conf: CohortConfig, persons_with_intervention: pl.Series
) -> list[tuple[str, str, pl.Expr]]:
    """The population filters of analysis-spec.md §1, in order: (step, description, keep)."""
    in_window = (
        pl.col("start").is_between(conf.window_start, conf.window_end)
        if conf.window_rule == "start"
        else (pl.col("start") <= conf.window_end) & (pl.col("end") >= conf.window_start)
    )
    region = region_of(conf.region_basis)
    age_ok = pl.col("age").is_between(conf.age_min, conf.age_max)
    person_treated = pl.col("treated").any().over("lopnr")
    had_intervention = pl.col("lopnr").is_in(persons_with_intervention.implode())
    keep_outside = conf.gc001_outside_spell == "control"
    short = pl.col("gross_days") < conf.min_control_spell_days
    short_applies = ~pl.col("treated") if conf.min_days_applies_to == "controls" else pl.lit(True)
    has_background = pl.col("bg_year").is_not_null()
    in_regions = region.is_in(conf.regions)
    type_ok = ~pl.col("forsakradtyp").is_in(conf.exclude_insured_types)
    outside_ok = pl.lit(keep_outside) | person_treated | ~had_intervention
    not_untreated = pl.col("treated") | ~person_treated
    long_ok = ~(short & short_applies)
    outside = "kept as controls" if keep_outside else "excluded"
    window = f"{conf.window_start}..{conf.window_end}"
    return [
        ("window", f"spell ({conf.window_rule}) in {window}", in_window),
        ("background", "a bakgrund row in or before the covariate year", has_background),
        ("age", f"age {conf.age_min}-{conf.age_max} in the covariate year", age_ok),
        ("region", f"region ({conf.region_basis}) in {list(conf.regions)}", in_regions),
        ("insured_type", f"insured type not in {list(conf.exclude_insured_types)}", type_ok),
        ("gc001_outside_spell", f"GC001 only outside cohort spells: {outside}", outside_ok),
        ("untreated_spell_of_treated", "spells without GC001 of treated persons", not_untreated),
        (
            "min_days",
            f"spells < {conf.min_control_spell_days} days ({conf.min_days_applies_to})",
            long_ok,
        ),
    ]


def unit_flags(cohort: pl.LazyFrame) -> pl.LazyFrame:
    """`person_row` (Table 2/B3) and `income_row` (income tables) flags, analysis-spec.md §3.4.

    In the cohort a person's spells are all treated or all controls. Treated:
    the spell holding the latest GC001 (ties: latest start) for Table 2/B3, the
    latest spell for income. Controls: the latest ended spell (if all are
    censored, the latest) for Table 2/B3, the latest spell for income.
    """
    spell = pl.col("spell_id")
    treated_pick = spell.sort_by(["last_gc001", "start"], descending=True).first()
    ended = (~pl.col("censored")).alias("ended")
    control_pick = spell.sort_by([ended, pl.col("end"), pl.col("start")], descending=True).first()
    person_pick = (
        pl.when(pl.col("treated"))
        .then(treated_pick.over("lopnr"))
        .otherwise(control_pick.over("lopnr"))
    )
    latest = spell.sort_by("start", descending=True).first().over("lopnr")
    return cohort.with_columns(
        (spell == person_pick).alias("person_row"), (spell == latest).alias("income_row")
    )


# The population filters up to this step look at neither GC001 nor length; the three
# after it do (persons whose GC001 lies outside their spells, untreated spells of treated
# persons, short controls). Their spells are all at risk of a first GC001 in the spell.
AT_RISK_STEP = "insured_type"
# The 30-day rule, the last population filter (the at-risk spells' two flags below).
LENGTH_STEP = "min_days"


def build_cohort(
    spells: pl.DataFrame,
    exposure: pl.DataFrame,
    bakgrund: pl.LazyFrame,
    persons_with_intervention: pl.Series,
    codes: Any,
    conf: CohortConfig,
) -> tuple[pl.DataFrame, list[dict[str, Any]], pl.DataFrame]:
    """The cohort (one row per kept spell, covariates, unit flags), its attrition rows, and
    the at-risk spells: the population after `AT_RISK_STEP`, before any filter that selects
    on exposure or length (the GC001 life table's denominator, §4.12), with
    `population_any_length` (it passes every population filter but the 30-day rule: the
    never-treated risk set's pool) and `long_enough` (it is long enough for a control)."""
    joined = spells.lazy().join(exposure.lazy(), on="spell_id")
    frame = (
        attach_background(joined, bakgrund, conf.year_basis, conf.education_fallback)
        .pipe(add_covariates, codes, conf)
        .sort("spell_id")
        .collect()
    )  # fmt: skip
    steps = [count_step(frame, "spells", "all sick-leave spells built from staged periods")]
    for step, description, keep in population_filters(conf, persons_with_intervention):
        if step == LENGTH_STEP:
            any_length = pl.col("spell_id").is_in(frame["spell_id"].implode())
            long_enough = (pl.col("gross_days") >= conf.min_control_spell_days).alias("long_enough")
        frame = frame.filter(keep)
        steps.append(count_step(frame, step, description))
        if step == AT_RISK_STEP:
            at_risk = frame
    cohort = unit_flags(frame.lazy()).collect()
    at_risk = at_risk.with_columns(any_length.alias("population_any_length"), long_enough)
    persons = cohort.filter("person_row")
    steps.append(count_step(persons, "person_row", "one spell per person: Table 2/B3 unit (§3.4)"))
    return cohort, steps, at_risk


def add_ownership(
    cohort: pl.DataFrame,
    contacts: pl.DataFrame | Path,
    lookback_days: int,
    primary_care: str,
    unknown: str,
) -> pl.DataFrame:
    """Cohort with `ownership` for Table B3 (§1.4): treated, `regi` of the latest GC001;
    controls, `regi` of the last contact in `primary_care` within `lookback_days` up to
    the start (`sql/cohort_control_ownership.sql`), else `unknown`."""
    controls = cohort.filter(~pl.col("treated")).select("spell_id", "lopnr", "start")
    found = sql.query(
        "cohort_control_ownership",
        {"lookback_days": lookback_days, "primary_care": primary_care},
        spells=controls,
        contacts=contacts,
    )
    control_regi = pl.col("regi_control").fill_null(unknown)
    return (
        cohort.join(found, on="spell_id", how="left")
        .with_columns(
            pl.when(pl.col("treated"))
            .then(pl.col("regi_latest"))
            .otherwise(control_regi)
            .alias("ownership")
        )
        .drop("regi_control")
        .sort("spell_id")
    )


def persons_with_intervention_contact(contacts: pl.LazyFrame, conf: CohortConfig) -> pl.Series:
    """`lopnr` of persons with an intervention contact (KVÅ codes) dated in the study window."""
    codes = pl.lit(list(conf.intervention_codes))
    has_code = pl.col("kva").str.split(" ").list.set_intersection(codes).list.len() > 0
    return (
        contacts.filter(pl.col("datum").is_between(conf.window_start, conf.window_end) & has_code)
        .select(pl.col("lopnr").unique().sort())
        .collect()
        .to_series()
    )


def delivery_rows(row_counts: Path) -> list[dict[str, Any]]:
    """Attrition rows for the delivered and staged `sjukpenning` rows (from row_counts.json)."""
    counts = json.loads(row_counts.read_text(encoding="utf-8"))
    table = counts.get("tables", counts)["sjukpenning"]
    return [
        {
            "step": "delivered_rows",
            "description": "sjukpenning rows delivered",
            "n_rows": table["rows_in"],
        },
        {
            "step": "staged_rows",
            "description": "sjukpenning rows staged",
            "n_rows": table["staged"],
        },
    ]


def run(cfg: Any) -> None:
    """Write outputs/cohort.parquet, outputs/cohort_at_risk.parquet and outputs/attrition.csv."""
    conf = CohortConfig.from_config(cfg)
    outputs = config.resolve_path(cfg.paths.outputs)
    staged = config.resolve_path(cfg.paths.staged)
    spells = pl.read_parquet(outputs / "spells.parquet")
    exposure = pl.read_parquet(outputs / "exposure.parquet")
    persons = persons_with_intervention_contact(
        pl.scan_parquet(staged / "vardkontakter.parquet"), conf
    )
    cohort, steps, at_risk = build_cohort(
        spells, exposure, pl.scan_parquet(staged / "bakgrund.parquet"), persons, cfg.codes, conf
    )
    cohort = add_ownership(
        cohort,
        staged / "vardkontakter.parquet",
        conf.control_lookback_days,
        conf.primary_care,
        conf.unknown_ownership,
    )
    io.write_parquet(cohort, outputs / "cohort.parquet")
    io.write_parquet(at_risk, outputs / "cohort_at_risk.parquet")
    attrition = pl.DataFrame(
        delivery_rows(staged / "row_counts.json") + steps, infer_schema_length=None
    )
    io.write_csv(attrition, outputs / "attrition.csv")
    last = steps[-2]
    log.info(
        "cohort: %d spells of %d persons (%d treated spells, %d control spells); %d person rows",
        last["n_spells"], last["n_persons"], last["n_spells_treated"], last["n_spells_control"],
        steps[-1]["n_spells"],
    )  # fmt: skip
