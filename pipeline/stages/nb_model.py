"""`nb_model` stage: sick days after GC001, negative binomial (analysis-spec.md §6.3-6.5).

Two designs, both fitted and written (§10 item 24):
- `riskset` (the pipeline's own): every member of every matched set of
  `outputs/riskset.parquet`; index = the case's first GC001 / the control's start +
  the case's day t. Controls recur: SEs cluster by person.
- `report` (to compare with the published +20 / +40 days): one row per person;
  treated indexed at their first GC001, controls at the start of their first (or
  latest) qualifying spell + the mean day of first GC001 of the treated rows.

Per row: `after_days` = sick days in [index, index + W - 1], `prior_days` = sick days
in [index - W, index - 1] (net or gross, `nb.day_measure`), over all the person's
spells. Rows whose after-window passes the data end are dropped (`nb.truncation:
exclude`) or kept with log(observed days) as offset (`offset`).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import polars as pl

from pipeline.core import config
from pipeline.report.figures import write_figure
from pipeline.report.figures.nb import extra_days
from pipeline.rules.sickdays import window_days

log = logging.getLogger(__name__)

COVARIATE_COLUMNS = ["age", "sex", "diagnosis_group", "lan"]


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
    cluster: str | None

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
            cluster=str(nb.cluster) if nb.cluster else None,
        )
        choices = {
            "nb.day_measure": (conf.day_measure, {"net", "gross"}),
            "nb.truncation": (conf.truncation, {"exclude", "offset"}),
            "nb.report_control_spell": (conf.report_control_spell, {"first", "latest"}),
        }
        config.check_choices(choices)
        return conf


def riskset_rows(riskset: pl.DataFrame, cohort: pl.DataFrame) -> pl.DataFrame:
    """Riskset design: one row per set member with its index date and its spell's covariates."""
    spell_covariates = cohort.select("spell_id", *COVARIATE_COLUMNS)
    return riskset.select(
        "set_id", "spell_id", "lopnr", pl.col("case").alias("treated"), "index_date"
    ).join(spell_covariates, on="spell_id", how="left")


def report_rows(cohort: pl.DataFrame, control_spell: str) -> tuple[pl.DataFrame, float]:
    """Report design (§6.3): one row per person, and the mean day of first GC001 used (days)."""
    treated = (
        cohort.filter("treated")
        .sort("first_gc001", "spell_id")
        .group_by("lopnr", maintain_order=True)
        .first()
    )
    mean_t = float(
        treated.select((pl.col("first_gc001") - pl.col("start")).dt.total_days().mean()).item()
    )
    controls = cohort.filter(~pl.col("treated")).sort(
        "start", "spell_id", descending=control_spell == "latest"
    )
    controls = controls.group_by("lopnr", maintain_order=True).first()
    offset = pl.duration(days=round(mean_t))
    rows = pl.concat(
        [
            treated.select(
                "spell_id",
                "lopnr",
                pl.lit(True).alias("treated"),
                pl.col("first_gc001").alias("index_date"),
                *COVARIATE_COLUMNS,
            ),
            controls.select(
                "spell_id",
                "lopnr",
                pl.lit(False).alias("treated"),
                (pl.col("start") + offset).alias("index_date"),
                *COVARIATE_COLUMNS,
            ),
        ]
    )
    return rows.with_columns(pl.lit(None, pl.Int64).alias("set_id")).sort("lopnr"), mean_t


def add_sick_days(
    rows: pl.DataFrame, periods: pl.DataFrame | Path, conf: NBConfig, data_end: dt.date
) -> pl.DataFrame:
    """Rows with `after_days`, `prior_days` (days, per `nb.day_measure`), `exposure_days`
    (after-window days inside the data) and `row_id`; truncated rows handled per `nb.truncation`."""
    w = conf.window_days
    rows = rows.with_row_index("row_id").with_columns(pl.col("row_id").cast(pl.Int64))
    windows = {
        "after": (pl.col("index_date"), pl.col("index_date") + pl.duration(days=w - 1)),
        "prior": (
            pl.col("index_date") - pl.duration(days=w),
            pl.col("index_date") - pl.duration(days=1),
        ),
    }
    measure = "net_days" if conf.day_measure == "net" else "gross_days"
    out = rows
    for name, (start, end) in windows.items():
        members = rows.select(
            pl.col("row_id").alias("member_id"),
            "lopnr",
            start.alias("window_start"),
            end.alias("window_end"),
        )
        days = window_days(members, periods).select(
            pl.col("member_id").alias("row_id"),
            pl.col(measure).cast(pl.Float64).alias(f"{name}_days"),
        )
        out = out.join(days, on="row_id", how="left")
    window_end = pl.col("index_date") + pl.duration(days=w - 1)
    inside = (pl.lit(data_end) - pl.col("index_date")).dt.total_days() + 1
    out = out.with_columns(
        pl.min_horizontal(inside, pl.lit(w)).alias("exposure_days"),
        (window_end > pl.lit(data_end)).alias("truncated"),
    )
    if conf.truncation == "exclude":
        out = out.filter(~pl.col("truncated"))
    return out.filter(pl.col("exposure_days") > 0)


def _jsonable(record: dict[str, Any]) -> dict[str, Any]:
    """`record` with NaN floats as None and tuples as lists, for strict JSON."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        if isinstance(value, float) and math.isnan(value):
            value = None
        out[key] = list(value) if isinstance(value, tuple) else value
    return out


def run(cfg: Any) -> None:
    """Fit both designs; write models/nb_data.parquet, models/nb.parquet, models/nb.json,
    tables/nb_extra_days.csv and figures/nb_extra_days.png."""
    from pipeline.core import io
    from pipeline.stats.nb2 import fit_nb2, lr_test_interaction

    conf = NBConfig.from_config(cfg)
    outputs = config.resolve_path(cfg.paths.outputs)
    periods = config.resolve_path(cfg.paths.staged) / "sjukpenning.parquet"
    end = cfg.data.end_date
    data_end = (
        dt.date.fromisoformat(str(end))
        if end
        else pl.scan_parquet(periods).select(pl.col("tom_datum").max()).collect().item()
    )
    cohort = pl.read_parquet(outputs / "cohort.parquet")
    riskset = pl.read_parquet(outputs / "riskset.parquet")
    report, mean_t = report_rows(cohort, conf.report_control_spell)
    designs = {"riskset": riskset_rows(riskset, cohort), "report": report}
    data = pl.concat(
        [
            add_sick_days(rows, periods, conf, data_end).with_columns(pl.lit(name).alias("design"))
            for name, rows in designs.items()
        ],
        how="diagonal_relaxed",
    ).with_columns(pl.col("exposure_days").log().alias("log_exposure_days"))
    io.write_parquet(data, outputs / "models" / "nb_data.parquet")

    offset = "log_exposure_days" if conf.truncation == "offset" else None
    grid = sorted({*range(0, conf.window_days + 1, 15), *conf.extra_days_at})
    summaries, notes, points, curves = [], {"mean_t_report_design": mean_t}, [], []
    for design in designs:
        rows = data.filter(pl.col("design") == design)
        args = {
            "frame": rows,
            "outcome": "after_days",
            "treatment": "treated",
            "covariates": list(conf.covariates),
            "numeric": ("prior_days",),
            "cluster": conf.cluster,
            "offset": offset,
            "window_days": conf.window_days if offset else None,
        }
        fit = fit_nb2(
            **args,
            interaction_with="prior_days" if conf.interaction else None,
            name=f"nb2_{design}",
            extra_at=conf.extra_days_at,
        )
        summaries.append(fit.summary.with_columns(pl.lit(design).alias("design")))
        lr = lr_test_interaction(**args, interaction_with="prior_days")
        notes[design] = {"fit": fit.metadata(), "lr_test_interaction": _jsonable(asdict(lr))}
        points.append(
            fit.extra_days(conf.extra_days_at).with_columns(pl.lit(design).alias("design"))
        )
        curves.append(fit.extra_days(grid).with_columns(pl.lit(design).alias("design")))
    io.write_parquet(
        pl.concat(summaries, how="diagonal_relaxed"), outputs / "models" / "nb.parquet"
    )
    io.write_json(outputs / "models" / "nb.json", notes)
    extra = pl.concat(points).select("design", *[c for c in points[0].columns if c != "design"])
    io.write_csv(extra, outputs / "tables" / "nb_extra_days.csv")
    write_figure(extra_days(pl.concat(curves), extra), outputs / "figures" / "nb_extra_days.png")
    for row in extra.iter_rows(named=True):
        log.info(
            "%s design: %+.1f extra sick days (95 %% CI %.1f to %.1f) at %g prior days, n = %d",
            row["design"],
            row["extra_days"],
            row["ci_low"],
            row["ci_high"],
            row["prior_days"],
            row["n"],
        )
