"""Benchmark: the `income` stage against a bare group-by over the same staged AGI file.

Issue 5's target: `income` within 2x the time of a bare polars or DuckDB
`group_by(lopnr, period).sum()` over the same file, measured in one run; and
`income` + `outcomes` <= 2 minutes, <= 6 GB peak RSS at national scale.

Usage: python benchmarks/income.py STAGED_AGI_PARQUET [--outputs DIR]
Each measurement runs in a fresh process; prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

BARE = {
    "duckdb bare group_by": (
        'import duckdb; duckdb.sql("select lopnr, period, sum(kontant_bruttolon) from '
        "read_parquet('{agi}') group by lopnr, period\").write_parquet('{out}')"
    ),
    "polars bare group_by": (
        "import polars as pl; pl.scan_parquet('{agi}').group_by('lopnr', 'period')"
        ".agg(pl.col('kontant_bruttolon').sum()).sink_parquet('{out}')"
    ),
}
MEASURE = (
    "import json, resource, time\nstarted = time.perf_counter()\n{code}\n"
    "print(json.dumps({{'wall_s': round(time.perf_counter() - started, 1), "
    "'peak_rss_mb': round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}}))"
)


def measure(code: str) -> dict[str, float]:
    """Wall seconds and peak RSS (MB) of `code` in a fresh Python process."""
    out = subprocess.run(
        [sys.executable, "-c", MEASURE.format(code=code)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("agi", type=Path)
    parser.add_argument("--outputs", type=Path, default=None)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="bench-income-"))
    rows = []
    for name, code in BARE.items():
        rows.append((name, measure(code.format(agi=args.agi, out=scratch / "bare.parquet"))))
    income = (
        "from pipeline.stages.income import write_income_monthly; from pathlib import Path; "
        f"write_income_monthly(Path('{args.agi}'), 201901, 202312, "
        f"Path('{scratch}/income.parquet'))"
    )
    rows.append(("income stage (sql/income_monthly.sql, sorted)", measure(income)))
    print("| step | wall time (s) | peak RSS (MB) |\n| --- | --- | --- |")
    for name, result in rows:
        print(f"| {name} | {result['wall_s']} | {result['peak_rss_mb']} |")
    fastest_bare = min(r["wall_s"] for n, r in rows if "bare" in n)
    print(f"\nincome / fastest bare group_by = {rows[-1][1]['wall_s'] / fastest_bare:.2f}")


if __name__ == "__main__":
    main()
