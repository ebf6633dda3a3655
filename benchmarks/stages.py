"""Benchmark: wall time and peak RSS of each stage at `small` and `national`.

Each stage runs in its own process (benchmarks/measure.py) on a delivery under a
scratch directory, so nothing in outputs/ is touched. Prints a markdown table for
docs/performance.md. Targets: national synth <= 5 min, stage <= 2 min, peak RSS
<= 8 GB (issue 3); spells + exposure + cohort <= 2 min and <= 6 GB (issue 4).

Usage: python benchmarks/stages.py [--sizes small national] [--stages ...] [--scratch DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from pipeline.__main__ import STAGES

HERE = Path(__file__).resolve().parent


def measure(stage: str, overrides: list[str]) -> dict[str, float]:
    """Wall seconds and peak RSS (MB) of `python -m pipeline STAGE overrides` in a fresh process."""
    out = subprocess.run(
        [sys.executable, str(HERE / "measure.py"), stage, *overrides],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def machine() -> str:
    """One line describing this machine."""
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    python = platform.python_version()
    return f"{platform.machine()}, {os.cpu_count()} cores, {mem_gb:.0f} GB RAM, Python {python}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", nargs="+", default=["small", "national"])
    parser.add_argument("--stages", nargs="+", default=list(STAGES))
    parser.add_argument("--scratch", default=None, help="directory for the deliveries")
    args = parser.parse_args()
    scratch = Path(args.scratch or tempfile.mkdtemp(prefix="bench-"))
    rows = []
    for size in args.sizes:
        base = scratch / size
        common = [
            f"synth.size={size}",
            f"synth.out_dir={base}/delivery",
            f"synth.truth_dir={base}/truth",
            f"paths.staged={base}/staged",
            f"paths.quarantine={base}/quarantine",
            f"paths.outputs={base}/outputs",
        ]
        for stage in args.stages:
            result = measure(stage, common)
            rows.append((size, stage, result["wall_s"], result["peak_rss_mb"]))
            print(
                f"{size:>9} {stage:>6}: {result['wall_s']:7.1f} s {result['peak_rss_mb']:7.0f} MB",
                flush=True,
            )
        counts_file = base / "staged" / "row_counts.json"
        if counts_file.exists():
            counts = json.loads(counts_file.read_text())
            rows_in = sum(t["rows_in"] for t in counts["tables"].values())
            print(f"{size:>9} rows in: {rows_in:,}", flush=True)
        shutil.rmtree(base)
    print(f"\nMachine: {machine()}\n")
    print("| size | stage | wall time (s) | peak RSS (MB) |\n| --- | --- | --- | --- |")
    for size, stage, wall, rss in rows:
        print(f"| {size} | {stage} | {wall} | {rss} |")


if __name__ == "__main__":
    main()
