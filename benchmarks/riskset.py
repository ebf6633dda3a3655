"""Benchmark: the risk-set sampler against the yardstick of R's Epi::ccwc.

Measured on this machine (DEVELOPERS.md, design.md): Epi::ccwc draws 10 controls
for 16 000 cases among 200 000 spells in 36 s, and among 400 000 in 86 s. Our
target is 100x faster. The cohort is synthetic (numpy): spells starting over
six years, lognormal lengths, 8 % treated at a lognormal day.

Usage: python benchmarks/riskset.py [--spells 200000 400000 1500000] [--cases 16000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import time

import numpy as np
import polars as pl

from pipeline.rules.riskset import RiskSetConfig, build_riskset


def synthetic_cohort(n_spells: int, n_cases: int, seed: int = 1) -> pl.DataFrame:
    """A cohort frame with the columns the sampler reads."""
    rng = np.random.default_rng(seed)
    start = np.datetime64(dt.date(2019, 1, 1)) + rng.integers(0, 6 * 365, n_spells).astype(
        "timedelta64[D]"
    )
    length = np.minimum(np.exp(rng.normal(np.log(90), 1.2, n_spells)), 2000).astype(int) + 1
    treated = np.zeros(n_spells, dtype=bool)
    treated[rng.choice(n_spells, n_cases, replace=False)] = True
    day = np.minimum(np.exp(rng.normal(np.log(50), 1.0, n_spells)).astype(int), length - 1)
    return pl.DataFrame(
        {
            "spell_id": np.arange(n_spells),
            "lopnr": rng.permutation(n_spells) + 1_000_000,
            "start": start,
            "end": start + (length - 1).astype("timedelta64[D]"),
            "treated": treated,
            "first_gc001": np.where(
                treated, start + day.astype("timedelta64[D]"), np.datetime64("NaT")
            ),
        }
    ).with_columns(pl.col("start", "end", "first_gc001").cast(pl.Date))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--spells", nargs="+", type=int, default=[200_000, 400_000, 1_500_000])
    parser.add_argument("--cases", type=int, default=16_000)
    parser.add_argument("--k", type=int, default=10)
    args = parser.parse_args()
    print("| spells | cases | k | sampler (s) | control rows | peak RSS (MB) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for n in args.spells:
        cohort = synthetic_cohort(n, args.cases)
        started = time.perf_counter()
        sets = build_riskset(cohort, RiskSetConfig(args.k, "never_treated", (), 7))
        seconds = time.perf_counter() - started
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        controls = sets.height - args.cases
        print(f"| {n:,} | {args.cases:,} | {args.k} | {seconds:.2f} | {controls:,} | {peak:.0f} |")


if __name__ == "__main__":
    main()
