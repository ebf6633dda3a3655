"""Prior-days form of the NB model against the planted truth (issue 15 items 1-2).

Per design and `nb.prior_form`: in-sample AIC, 5-fold-by-person out-of-sample mean NB2
log-likelihood per row (held-out deviance up to a constant: higher is better), and
extra days at the g-computation points beside the written truth
(`pipeline.rules.nb_truth`). Reads outputs/models/nb_data.parquet and
outputs/synth_truth/spells.parquet of a synthetic run (`make repro`).

    .venv/bin/python benchmarks/nb_prior_form.py [outputs_dir]
"""

from __future__ import annotations

import datetime as dt
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import polars as pl
from scipy import stats

from pipeline.core import config
from pipeline.rules.nb_truth import true_extra_days, truth_summary
from pipeline.rules.prior_form import FORMS, build_form
from pipeline.stages.nb_model import NBConfig
from pipeline.stages.nb_model.fit import fit_design, with_basis
from pipeline.stats.nb2 import fit_nb2

FOLDS = 5


def design_matrix(terms: tuple[str, ...], frame: pl.DataFrame) -> np.ndarray:
    """Design columns named by `terms` for `frame` (rows x terms, unitless)."""
    cols = []
    for term in terms:
        if term == terms[0]:
            cols.append(np.ones(frame.height))
        elif term.endswith("]") and "[" in term and term.split("[")[0] in frame.columns:
            col, level = term[:-1].split("[", 1)
            cols.append((frame[col].cast(pl.String) == level).cast(pl.Float64).to_numpy())
        else:
            cols.append(frame[term].cast(pl.Float64).to_numpy())
    return np.column_stack(cols)


def heldout_loglik(rows: pl.DataFrame, conf: NBConfig) -> float:
    """Mean NB2 log-likelihood per held-out row (nats), folds by person."""
    fold = (rows["lopnr"].hash(seed=1) % FOLDS).to_numpy()
    total, n = 0.0, 0
    for k in range(FOLDS):
        train, test = rows.filter(fold != k), rows.filter(fold == k)
        form = build_form(
            conf.prior_form,
            train["prior_days"].to_numpy(),
            conf.window_days,
            conf.spline_knots,
            conf.prior_bands,
        )
        tr, basis, inter = with_basis(train, form)
        te, _, _ = with_basis(test, form)
        fit = fit_nb2(
            tr,
            "after_days",
            "treated",
            list(conf.covariates),
            interaction_with=None,
            numeric=[*basis, *inter],
            extra_at=(),
        )
        x = design_matrix(fit.terms, te.with_columns(pl.col("treated").cast(pl.Float64)))
        mu = np.exp(x @ fit.params_)
        size = 1 / fit.alpha_
        y = np.round(te["after_days"].to_numpy())
        total += float(stats.nbinom.logpmf(y, size, size / (size + mu)).sum())
        n += te.height
    return total / n


def main(outputs: Path) -> None:
    """Print one line per design x form: AIC, held-out log-lik, extra days vs truth."""
    cfg = config.compose([])
    data = pl.read_parquet(outputs / "models" / "nb_data.parquet")
    truth = pl.read_parquet(outputs / "synth_truth" / "spells.parquet")
    end = dt.date.fromisoformat(str(cfg.data.end_date or cfg.synth.data_end))
    points = [float(v) for v in cfg.nb.extra_days_at]
    for design in ("riskset", "report"):
        rows = data.filter(pl.col("design") == design)
        truths = truth_summary(true_extra_days(rows, truth, int(cfg.nb.window_days), end), points)
        written = zip(truths["what"], truths["true_extra_days"].round(1), strict=True)
        print(design, "truth:", dict(written))
        for form in FORMS:
            conf = replace(NBConfig.from_config(cfg), prior_form=form)
            ll = heldout_loglik(rows, conf)
            try:
                fit = fit_design(rows, design, conf, points, None)
            except ValueError as err:
                print(f"  {form:7s} held-out loglik/row {ll:.4f}  STOPPED: {err}")
                continue
            k = fit["summary"].filter(pl.col("term").str.starts_with("IRR(")).height + 1
            aic = 2 * k - 2 * fit["notes"]["log_likelihood_full"]
            est = (
                fit["points"]
                .select(
                    pl.format(
                        "{}:{} ({}-{}){}",
                        "prior_days",
                        pl.col("extra_days").round(1),
                        pl.col("ci_low").round(1),
                        pl.col("ci_high").round(1),
                        pl.when("extrapolated").then(pl.lit("*")).otherwise(pl.lit("")),
                    )
                )["prior_days"]
                .to_list()
            )
            print(f"  {form:7s} AIC {aic:10.1f}  held-out loglik/row {ll:.4f}  {est}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else config.ROOT / "outputs")
