"""Benchmark: one NB2 fit with cluster-robust SEs, ours (`fit_nb2`) against R's MASS::glm.nb.

The rows are simulated with the nb_model design at national scale (issue 15 item 10:
220 638 risk-set rows): matched sets of one case and up to 5 controls, persons reused
across sets (controls recur), treated, prior_days (40 % zeros), their interaction,
age, sex, diagnosis_group (5 levels), lan (21 levels), NB2 outcome with alpha 1.2.
Both fits run in this one invocation on the same rows (written to a CSV for R):
ours with `cluster` person, set and two-way; R's glm.nb (default control) timed
alone, then sandwich::vcovCL by person (the time of the fit plus one vcovCL is
R's "fit with cluster-robust SEs"). Wall times are the best of `--repeat` runs.

Usage: python benchmarks/nb.py [--rows 220638] [--repeat 3] [--no-r]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

from pipeline.stats.nb2 import fit_nb2

COVARIATES = ["age", "sex", "diagnosis_group", "lan"]

R_SCRIPT = r"""
suppressPackageStartupMessages({library(MASS); library(sandwich)})
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1], colClasses = c(lan = "character"))
d$lan <- relevel(factor(d$lan), ref = names(which.max(table(d$lan))))
d$diagnosis_group <- relevel(factor(d$diagnosis_group),
                             ref = names(which.max(table(d$diagnosis_group))))
d$sex <- relevel(factor(d$sex), ref = names(which.max(table(d$sex))))
repeats <- as.integer(args[2])
best_fit <- Inf
best_cl <- Inf
for (i in seq_len(repeats)) {
  t0 <- proc.time()[["elapsed"]]
  fit <- glm.nb(after_days ~ treated * prior_days + age + sex + diagnosis_group + lan, data = d)
  t1 <- proc.time()[["elapsed"]]
  v <- vcovCL(fit, cluster = ~lopnr, type = "HC1")
  t2 <- proc.time()[["elapsed"]]
  best_fit <- min(best_fit, t1 - t0)
  best_cl <- min(best_cl, t2 - t1)
}
cat(sprintf('{"fit": %.3f, "vcovcl": %.3f, "treated": %.12g, "theta": %.12g}\n',
            best_fit, best_cl, coef(fit)[["treated"]], fit$theta))
"""


def simulate(n_rows: int, seed: int = 15) -> pl.DataFrame:
    """`n_rows` matched-set member rows (one case + up to 5 controls per set), NB2 outcome."""
    rng = np.random.default_rng(seed)
    size = rng.integers(2, 7, n_rows)  # 1 case + 1..5 controls
    set_id = np.repeat(np.arange(n_rows), size)[:n_rows]
    treated = np.r_[1, np.diff(set_id) != 0].astype(float)
    n_persons = int(n_rows * 0.6)
    lopnr = rng.integers(0, n_persons, n_rows)  # controls recur across sets
    prior = np.where(rng.random(n_rows) < 0.4, 0, rng.integers(1, 366, n_rows)).astype(float)
    age = rng.integers(20, 66, n_persons)[lopnr].astype(float)
    sex = rng.choice(["K", "M"], n_persons, p=[0.6, 0.4])[lopnr]
    diag = rng.choice(["F", "M", "S", "J", "other"], n_rows, p=[0.4, 0.25, 0.15, 0.1, 0.1])
    lan = rng.choice([f"{i:02d}" for i in range(1, 22)], n_persons)[lopnr]
    lan_effect = dict(zip(np.unique(lan), rng.normal(0, 0.1, 21), strict=False))
    eta = (
        2.5
        + 0.4 * treated
        + 0.004 * prior
        - 0.0008 * treated * prior
        + 0.01 * (age - 45)
        + 0.1 * (sex == "M")
        + np.vectorize(lan_effect.get)(lan)
        + np.select([diag == "F", diag == "M"], [0.3, 0.1], 0.0)
    )
    alpha = 1.2
    mu = np.exp(eta)
    y = rng.negative_binomial(1 / alpha, 1 / (1 + alpha * mu))
    return pl.DataFrame(
        {
            "set_id": set_id,
            "lopnr": lopnr,
            "after_days": np.minimum(y, 365),
            "treated": treated.astype(int),
            "prior_days": prior,
            "age": age,
            "sex": sex,
            "diagnosis_group": diag,
            "lan": lan,
        }
    )


def time_ours(frame: pl.DataFrame, cluster: object, repeat: int) -> tuple[float, object]:
    """Best wall time (s) of `repeat` fits of `fit_nb2` and the last result."""
    best, res = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        res = fit_nb2(frame, "after_days", "treated", COVARIATES, cluster=cluster)
        best = min(best, time.perf_counter() - started)
    return best, res


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=220_638)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-r", action="store_true")
    args = parser.parse_args()
    frame = simulate(args.rows)
    print(
        f"rows {frame.height}, sets {frame['set_id'].n_unique()}, "
        f"persons {frame['lopnr'].n_unique()}"
    )
    print("| fit | wall time (s) | treated | theta = 1/alpha |")
    print("| --- | --- | --- | --- |")
    for label, cluster in (
        ("ours, cluster person", "lopnr"),
        ("ours, cluster set", "set_id"),
        ("ours, two-way set + person", ("set_id", "lopnr")),
    ):
        seconds, res = time_ours(frame, cluster, args.repeat)
        treated = res.params_[res.terms.index("treated")]
        print(f"| {label} | {seconds:.2f} | {treated:.10f} | {1 / res.alpha_:.10f} |")
    if args.no_r:
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "rows.csv"
        frame.write_csv(path)
        script = Path(tmp) / "fit.R"
        script.write_text(R_SCRIPT)
        out = subprocess.run(
            ["Rscript", str(script), str(path), str(args.repeat)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    r = json.loads(out.strip().splitlines()[-1])
    print(f"| R glm.nb (fit only) | {r['fit']:.2f} | {r['treated']:.10f} | {r['theta']:.10f} |")
    print(f"| R glm.nb + vcovCL(~lopnr) | {r['fit'] + r['vcovcl']:.2f} | | |")


if __name__ == "__main__":
    main()
