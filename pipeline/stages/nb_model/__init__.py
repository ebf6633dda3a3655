"""`nb_model` stage: sick days after GC001, negative binomial (analysis-spec.md §6.3-6.5).

Two designs, both fitted and written (§10 item 24), rows built in `rows`:
- `riskset` (the pipeline's own): every member of every matched set of
  `outputs/riskset.parquet`. Controls recur: SEs cluster per `nb.cluster` (person, set or two-way).
- `report` (to compare with the published +20 / +40 days): one row per person;
  controls indexed at start + round(mean_t), mean_t from the treated model rows.

Per row: `after_days` = sick days in [index, index + W - 1], `prior_days` = sick days
in [index - W, index - 1] (net or gross, `nb.day_measure`), over all the person's
spells. Rows whose after-window passes the data end are dropped (`nb.truncation:
exclude`) or kept with log(observed days) as offset (`offset`). Prior days enter in
the form `nb.prior_form` (`pipeline.rules.prior_form`), interacted with treatment;
extra days are reported only inside both arms' observed prior days (`fit`).

Sensitivity (issue 15 item 4): a fractional logit of after_days / W (`pipeline.stats.
fractional`) beside each design's NB, with the same basis, interactions, covariates and
clusters, on the rows with a complete after-window (with `nb.truncation: offset` the
truncated rows are left out: a share of a shorter window has another denominator);
its extra days go to tables/nb_extra_days_fractional.csv.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import polars as pl

from pipeline.core import config
from pipeline.core.errors import PipelineError
from pipeline.report.figures import write_figure
from pipeline.report.figures.nb import extra_days
from pipeline.rules.prior_form import FORMS
from pipeline.stages.nb_model.fit import fit_design, fit_l1334
from pipeline.stages.nb_model.rows import (
    COPY,
    COVARIATE_COLUMNS,
    T_BAND,
    add_sick_days,
    complete,
    fill_short_sets,
    report_rows,
    riskset_rows,
)
from pipeline.stats.base import json_float

log = logging.getLogger(__name__)


def _day_edges(key: str, values: Any) -> tuple[int, ...]:
    """`values` as increasing whole days >= 0 (band edges), else PipelineError naming `key`."""
    edges = list(values)
    whole = all(isinstance(v, int) and not isinstance(v, bool) for v in edges)
    if not whole or edges != sorted(set(edges)) or any(v < 0 for v in edges):
        raise PipelineError(f"config {key}={edges}: expected increasing whole days >= 0")
    return tuple(edges)


# nb.cluster -> fit_nb2's cluster columns in the riskset design (analysis-spec.md §11 item 2)
CLUSTER_COLUMNS = {"person": "lopnr", "set": "set_id", "two_way": ("set_id", "lopnr")}


@dataclass(frozen=True)
class NBConfig:
    """The `nb` slice of the configuration (conf/analysis/report.yaml)."""

    window_days: int
    day_measure: str
    truncation: str
    interaction: bool
    covariates: tuple[str, ...]
    report_control_spell: str
    extra_days_at: tuple[float, ...]
    cluster: str
    prior_form: str
    spline_knots: tuple[float, ...]
    prior_bands: tuple[float, ...]
    riskset_t_bands: tuple[int, ...] = ()
    fill_short_sets: bool = True

    @classmethod
    def from_config(cls, cfg: Any) -> NBConfig:
        """Build from the composed configuration, checking the choices."""
        nb = cfg.nb
        conf = cls(
            window_days=int(nb.window_days),
            day_measure=str(nb.day_measure),
            truncation=str(nb.truncation),
            interaction=bool(nb.interaction),
            covariates=tuple(str(c) for c in nb.covariates),
            report_control_spell=str(nb.report_control_spell),
            extra_days_at=tuple(float(v) for v in nb.extra_days_at),
            cluster=str(nb.cluster),
            prior_form=str(nb.prior_form),
            spline_knots=tuple(float(v) for v in nb.spline_knots),
            prior_bands=tuple(float(v) for v in nb.prior_bands),
            riskset_t_bands=_day_edges("nb.riskset_t_bands", nb.riskset_t_bands),
            fill_short_sets=bool(nb.fill_short_sets),
        )
        choices = {
            "nb.day_measure": (conf.day_measure, {"net", "gross"}),
            "nb.truncation": (conf.truncation, {"exclude", "offset"}),
            "nb.report_control_spell": (conf.report_control_spell, {"first", "latest"}),
            "nb.prior_form": (conf.prior_form, set(FORMS)),
            "nb.cluster": (conf.cluster, set(CLUSTER_COLUMNS)),
        }
        config.check_choices(choices)
        return conf

    def covariates_for(self, design: str) -> list[str]:
        """The adjustment covariates of `design`: `nb.covariates`, in the riskset design
        also the band of the set's day t (`T_BAND`) when `nb.riskset_t_bands` is set."""
        extra = [T_BAND] if design == "riskset" and self.riskset_t_bands else []
        return [*self.covariates, *extra]

    def cluster_for(self, design: str) -> str | tuple[str, str]:
        """fit_nb2's `cluster` column(s) for `design`: `nb.cluster` mapped in the riskset
        design; by person in the others (one row per person, no matched sets)."""
        return CLUSTER_COLUMNS[self.cluster] if design == "riskset" else "lopnr"


DESIGNS = ("riskset", "report")  # the model rows' designs, in the order they are written


def model_rows(
    conf: NBConfig, outputs: Path, periods: Path, data_end: dt.date
) -> tuple[pl.DataFrame, float]:
    """Both designs' model rows (one per design x member, `design`, `row_id`, sick days,
    covariates, `log_exposure_days`) and the report design's mean_t (days). Only the
    columns the rows use are read, and the inputs are freed on return (memory at scale)."""
    spell_columns = ["spell_id", "lopnr", *dict.fromkeys([*COVARIATE_COLUMNS, *conf.covariates])]
    cohort = pl.read_parquet(
        outputs / "cohort.parquet", columns=[*spell_columns, "treated", "start", "first_gc001"]
    )
    riskset = pl.read_parquet(outputs / "riskset.parquet")
    at_risk = pl.read_parquet(outputs / "cohort_at_risk.parquet", columns=spell_columns)
    sick_days = partial(
        add_sick_days,
        periods=periods,
        window=conf.window_days,
        measure=conf.day_measure,
        truncation=conf.truncation,
        data_end=data_end,
    )
    report, mean_t = report_rows(cohort, conf.report_control_spell, sick_days, conf.covariates)
    drawn = pl.lit(0, pl.Int32).alias(COPY)  # a row as drawn, not a fill_short_sets copy
    members = complete(sick_days(riskset_rows(riskset, at_risk)), conf.covariates)
    if conf.fill_short_sets and riskset.height:
        members = fill_short_sets(members, int(riskset["k"].max()))  # numbers the copies
    else:
        members = members.with_columns(drawn)
    designs = {"riskset": members, "report": report.with_columns(drawn)}  # DESIGNS' order
    data = pl.concat(
        [
            rows.with_row_index("row_id").with_columns(
                pl.col("row_id").cast(pl.Int64), pl.lit(name).alias("design")
            )
            for name, rows in designs.items()
        ],
        how="diagonal_relaxed",
    )
    return data.with_columns(pl.col("exposure_days").log().alias("log_exposure_days")), mean_t


def run(cfg: Any) -> None:
    """Fit both designs; write models/nb_data.parquet, models/nb.parquet,
    models/nb_fractional.parquet, models/nb.json, tables/nb_extra_days.csv,
    tables/nb_extra_days_fractional.csv, tables/nb_l1334.csv and figures/nb_extra_days.png."""
    from pipeline.core import io

    conf = NBConfig.from_config(cfg)
    outputs = config.resolve_path(cfg.paths.outputs)
    periods = config.resolve_path(cfg.paths.staged) / "sjukpenning.parquet"
    end = cfg.data.end_date
    data_end = (
        dt.date.fromisoformat(str(end))
        if end
        else pl.scan_parquet(periods).select(pl.col("tom_datum").max()).collect().item()
    )
    data, mean_t = model_rows(conf, outputs, periods, data_end)
    io.write_parquet(data, outputs / "models" / "nb_data.parquet")

    offset = "log_exposure_days" if conf.truncation == "offset" else None
    grid = sorted({*range(0, conf.window_days + 1, 15), *conf.extra_days_at})
    fits = {
        design: fit_design(data.filter(pl.col("design") == design), design, conf, grid, offset)
        for design in DESIGNS
    }
    l1334, l1334_notes = fit_l1334(data.filter(pl.col("design") == "riskset"), conf)
    notes = {
        "mean_t_report_design": json_float(mean_t),
        **{design: fit["notes"] for design, fit in fits.items()},
        "l1334": {"design": "riskset", "warnings": l1334_notes},
    }
    summaries = [fit["summary"] for fit in fits.values()]
    io.write_parquet(
        pl.concat(summaries, how="diagonal_relaxed"), outputs / "models" / "nb.parquet"
    )
    io.write_parquet(
        pl.concat([fit["fractional"]["summary"] for fit in fits.values()], how="diagonal_relaxed"),
        outputs / "models" / "nb_fractional.parquet",
    )
    io.write_json(outputs / "models" / "nb.json", notes)
    extra = pl.concat([fit["points"] for fit in fits.values()])
    io.write_csv(extra, outputs / "results" / "nb_extra_days.csv")
    fractional = pl.concat([fit["fractional"]["points"] for fit in fits.values()])
    io.write_csv(fractional, outputs / "results" / "nb_extra_days_fractional.csv")
    io.write_csv(l1334, outputs / "results" / "nb_l1334.csv")
    curves = pl.concat([fit["curve"] for fit in fits.values()]).filter(~pl.col("extrapolated"))
    write_figure(
        extra_days(curves, extra.filter(~pl.col("extrapolated"))),
        outputs / "figures" / "nb_extra_days.png",
    )
    models = [("NB2", extra), ("fractional logit", fractional)]
    for model, row in ((m, r) for m, table in models for r in table.iter_rows(named=True)):
        log.info(
            "%s, %s design: %+.1f extra sick days (95 %% CI %.1f to %.1f) at %g prior days, "
            "n = %d%s",
            model,
            row["design"],
            row["extra_days"],
            row["ci_low"],
            row["ci_high"],
            row["prior_days"],
            row["n"],
            " (extrapolated: outside both arms' prior days)" if row["extrapolated"] else "",
        )
