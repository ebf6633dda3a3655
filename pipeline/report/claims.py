"""The report's sentences on the claims it makes in words only (§4.12), read from the tables.

Each sentence quotes the claim (with its line in the report) and the numbers the
`claims` stage wrote, as written (`formatting.display`); a hidden cell reads
"hidden". Like the rest of the report, nothing here computes a new number but one:
the largest regional SMD, taken over the SMDs the published table shows.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from pipeline.report.formatting import display
from pipeline.report.labels import ALL, ALL_LENGTHS
from pipeline.report.publication.spec import number

HIDDEN = "hidden"
ANCHOR_TEXT = {
    "spell_start": "the spell start",
    "index": "the index day (the current spell's days included)",
    "index_outside_spell": "the index day, outside the current spell",
}


def _show(value: str | None) -> str:
    """A table cell as text: its displayed number, or `hidden` when empty (suppressed)."""
    return display(value) if value not in (None, "") else HIDDEN


def length_lines(life_table: pl.DataFrame, rank: pl.DataFrame) -> list[str]:
    """L1384: the GC001 rate over spell days, and the rank test per risk-set design."""
    overall = life_table.filter((pl.col("care_level") == ALL) & (pl.col("rate_per_1000") != ""))
    lines = []
    if overall.height:
        first, last = overall.row(0, named=True), overall.row(-1, named=True)
        lines.append(
            "L1384 'the length of the spell does not affect whether the patient gets the "
            "intervention': the rate of a first GC001 is "
            f"{_show(first['rate_per_1000'])} per 1 000 spell-days on days "
            f"{first['day_from']}–{first['day_to']} and {_show(last['rate_per_1000'])} on days "
            f"{last['day_from']}–{last['day_to']} (gc001_life_table.csv)"
        )
    for r in rank.iter_rows(named=True):
        lines.append(
            f"Case's length rank in risk sets ({r['design']}): {_show(r['n_sets'])} sets, mean "
            f"rank {_show(r['mean_rank'])} (0.5 if length does not matter), Gehan z = "
            f"{_show(r['gehan_z'])}, p = {_show(r['gehan_p'])}; deciles χ² p = "
            f"{_show(r['chi2_p'])}"
        )
    return lines


def prior_lines(prior: pl.DataFrame) -> list[str]:
    """L1420/L1087: mean net sick days before the spell start and before the index."""
    lines = []
    for r in prior.filter(pl.col("statistic") == "mean").iter_rows(named=True):
        before = ANCHOR_TEXT.get(r["anchor"], r["anchor"])
        lines.append(
            "L1420 'longer and more extensive sick absence before': net sick days in the "
            f"{r['window_days']} days before {before}, treated {_show(r['treated'])} vs "
            f"controls {_show(r['control'])}, difference {_show(r['difference'])} (95 % CI "
            f"{_show(r['diff_ci_low'])} to {_show(r['diff_ci_high'])}; {r['diff_method']})"
        )
    return lines


def region_lines(smd: pl.DataFrame, threshold: float) -> list[str]:
    """L1378: per region, the largest |SMD| against the pooled treated and how many exceed
    `threshold`, over the SMDs the published table shows (hidden ones are not guessed)."""
    regions = [c for c in smd.columns if c not in ("block", "category")]
    parts = []
    for name in regions:
        shown = [abs(v) for v in (number(t) for t in smd[name].to_list()) if v is not None]
        if shown:
            above = sum(v > threshold for v in shown)
            parts.append(f"{name} {display(str(max(shown)))} ({above} of {len(shown)})")
    if not parts:
        return []
    return [
        "L1378 'the regions target the same groups': largest |SMD| of each region's Table 2 "
        f"rows against all treated (and how many of the shown rows exceed {threshold:g}): "
        + ", ".join(parts)
        + " (table2_by_region_smd.csv)"
    ]


def b5_lines(b5: pl.DataFrame) -> list[str]:
    """L1481: share of B5's persons with a spell ending in the months before the start month."""
    rows = b5.filter(pl.col("length_class") == ALL_LENGTHS)
    parts = [
        f"{r['group']} {_show(r['percent'])} % (95 % CI {_show(r['ci_low'])} to "
        f"{_show(r['ci_high'])})"
        for r in rows.iter_rows(named=True)
    ]
    if not parts:
        return []
    months = rows["months_before"][0]
    return [
        "L1481 'in most cases a spell within three months before': among B5's persons, "
        f"another spell ended in the {months} months before the start month for " + "; ".join(parts)
    ]


def claim_lines(tables_dir: Path, smd_threshold: float) -> list[str]:
    """Every §4.12 sentence of the report, from the `claims` stage's published tables."""

    def read(name: str) -> pl.DataFrame:
        return pl.read_csv(tables_dir / name, infer_schema_length=0)

    return [
        *length_lines(read("gc001_life_table.csv"), read("gc001_length_rank.csv")),
        *prior_lines(read("prior_sick_days.csv")),
        *region_lines(read("table2_by_region_smd.csv"), smd_threshold),
        *b5_lines(read("table_b5_prior_spell.csv")),
    ]
