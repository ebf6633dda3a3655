"""`survival` stage: time from the index day to the end of the spell, cases vs their controls.

Beyond the report (analysis-spec.md §11 item 5): Kaplan–Meier curves of the
matched-set members of `outputs/riskset.parquet`, and a Cox model stratified by
matched set (each set its own baseline hazard), `pipeline.stats.cox`. A member
is on sick leave on its index day; its duration is the days from the index to
the spell's last day, and the event is the spell ending before the data end
(censored spells are censored).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

import numpy as np
import polars as pl

from pipeline.core import config, io
from pipeline.report.figures import write_figure
from pipeline.report.figures.km import km_figure
from pipeline.report.labels import GROUP_LABEL, KM_TITLE
from pipeline.stats.base import json_floats, safe_sqrt
from pipeline.stats.cox import CoxResult, fit_stratified_cox
from pipeline.stats.km import kaplan_meier, median_table

log = logging.getLogger(__name__)

SE_CHOICES = ("person", "set", "two_way")


def member_durations(riskset: pl.DataFrame, spells: pl.DataFrame) -> pl.DataFrame:
    """One row per set member: duration_days (index to the spell's last day) and event.

    `spells` must hold every member's spell: the at-risk spells, since controls drawn at
    the index may be shorter than the cohort's minimum length; a missing one raises.
    """
    missing = riskset.join(spells, on="spell_id", how="anti")
    if missing.height:
        raise ValueError(f"survival: {missing.height} risk-set members have no spell")
    spells = spells.select("spell_id", "end", "censored")
    return (
        riskset.select("set_id", "spell_id", "lopnr", "case", "index_date")
        .join(spells, on="spell_id", how="left")
        .with_columns(
            (pl.col("end") - pl.col("index_date")).dt.total_days().alias("duration_days"),
            (~pl.col("censored")).alias("event"),
        )
    )


def covariances(result: CoxResult) -> dict[str, np.ndarray]:
    """The robust covariances of the log-HRs by `survival.se` choice: person, set, two_way."""
    return {"person": result.cov_, "set": result.cov_strata_, "two_way": result.cov_two_way_}


def reported_model(result: CoxResult, se: str) -> tuple[CoxResult, dict[str, Any]]:
    """`result` with `cov_` the robust covariance `se` names, and its JSON metadata.

    The summary (models/survival.parquet) and `std_err` in the metadata then carry the
    SE that tables/cox_hr.csv reports; the metadata adds `se` and the per-person SEs.
    """
    reported = replace(result, cov_=covariances(result)[se])
    meta = reported.metadata()
    meta["cov_type"] = {"person": "robust_cluster", "set": "robust_set", "two_way": "two_way"}[se]
    meta["se"] = se
    meta["std_err_person"] = json_floats(safe_sqrt(np.diag(result.cov_)))
    return reported, meta


def hazard_ratio_table(result: CoxResult, se: str, n: int, n_strata: int) -> pl.DataFrame:
    """The case hazard ratio with 95 % CIs under each robust variance; `reported` marks `se`.
    `n` and `n_strata` are the members and sets analysed, as the KM table counts them: a
    set without events adds nothing to the partial likelihood, and the fitted count beside
    the KM table's would give the number of such sets, a small count (models/survival.json
    has it)."""
    rows = []
    beta = float(result.params_[0]) if np.isfinite(result.params_[0]) else float("nan")
    for name, cov in covariances(result).items():
        std_err = float(np.sqrt(cov[0, 0])) if np.all(np.isfinite(cov)) else float("nan")
        rows.append(
            {
                "variance": name,
                "hazard_ratio": float(np.exp(beta)),
                "ci_low": float(np.exp(beta - 1.959963984540054 * std_err)),
                "ci_high": float(np.exp(beta + 1.959963984540054 * std_err)),
                "log_hr_std_err": std_err,
                "n": n,
                "n_strata": n_strata,
                "reported": name == se,
            }
        )
    return pl.DataFrame(rows)


def run(cfg: Any) -> None:
    """Write models/survival.parquet and .json, tables/km_medians.csv, tables/cox_hr.csv,
    figures/km.png."""
    se = str(cfg.survival.se)
    config.check_choices({"survival.se": (se, SE_CHOICES)})
    outputs = config.resolve_path(cfg.paths.outputs)
    members = member_durations(
        pl.read_parquet(outputs / "riskset.parquet"),
        pl.read_parquet(outputs / "cohort_at_risk.parquet"),
    )
    km = kaplan_meier(members, group="case")
    medians = median_table(km)
    min_count = int(cfg.disclosure.min_count)
    io.write_csv(  # whole: the gate hides a group's median with its small n
        medians.with_columns(pl.col("group").replace_strict(GROUP_LABEL, return_dtype=pl.String)),
        outputs / "results" / "km_medians.csv",
    )
    # the curves are drawn here, only while at least min_count spells are at risk
    write_figure(
        km_figure(km.filter(pl.col("at_risk") >= min_count), KM_TITLE, GROUP_LABEL),
        outputs / "figures" / "km.png",
    )
    result = fit_stratified_cox(members, cluster="lopnr", name="cox_stratified_by_set")
    reported_fit, meta = reported_model(result, se)
    io.write_parquet(reported_fit.summary, outputs / "models" / "survival.parquet")
    io.write_json(outputs / "models" / "survival.json", meta)
    table = hazard_ratio_table(result, se, members.height, members["set_id"].n_unique())
    io.write_csv(table, outputs / "results" / "cox_hr.csv")
    reported = table.filter("reported").row(0, named=True)
    log.info(
        "Cox stratified by %d sets: HR %.3f (95 %% CI %.3f to %.3f, %s-clustered)",
        reported["n_strata"],
        reported["hazard_ratio"],
        reported["ci_low"],
        reported["ci_high"],
        se,
    )
