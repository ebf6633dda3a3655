"""The report's sentences on the claims it makes in words only (§4.12), read from the tables.

Each sentence quotes the claim (with its line in the report) and the numbers the
`claims` stage wrote, in Swedish format (`numbers.cell`); a withheld cell reads "dold".
Like the rest of the report, nothing here computes a new number but one: the largest
regional SMD, taken over the SMDs the published table shows.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from pipeline.report import words
from pipeline.report.labels import ALL, ALL_LENGTHS
from pipeline.report.numbers import cell, interval, p_phrase
from pipeline.report.publication.spec import number

HIDDEN = "dold"


def _show(value: str | None, kind: str = "stat") -> str:
    """A table cell as printed (`numbers.cell`), or `dold` when empty or withheld."""
    return cell(value, kind) if value not in (None, "", words.HIDDEN_CELL) else HIDDEN


def _ci(low: str | None, high: str | None, kind: str = "stat") -> str:
    """A confidence interval in a sentence, or `dold`."""
    return interval(low, high, kind) or HIDDEN


def length_lines(life_table: pl.DataFrame, rank: pl.DataFrame) -> list[str]:
    """L1384: the GC001 rate over spell days, and the rank test per risk-set design."""
    overall = life_table.filter((pl.col("care_level") == ALL) & (pl.col("rate_per_1000") != ""))
    lines = []
    if overall.height:
        first, last = overall.row(0, named=True), overall.row(-1, named=True)
        lines.append(
            "L1384 ”sjukperiodens längd påverkar inte om patienten får insatsen”: andelen som "
            f"får en första GC001 är {_show(first['rate_per_1000'])} per 1 000 sjukdagar dag "
            f"{first['day_from']}–{first['day_to']} och {_show(last['rate_per_1000'])} dag "
            f"{last['day_from']}–{last['day_to']} (gc001_life_table.csv)"
        )
    for r in rank.iter_rows(named=True):
        lines.append(
            f"Fallets rang efter längd i sitt riskset ({words.value(r['design'])}): "
            f"{_show(r['n_sets'], 'count')} set, medelrang {_show(r['mean_rank'])} (0,5 om "
            f"längden inte spelar roll), Gehan z = {_show(r['gehan_z'])}, "
            f"{p_phrase(r['gehan_p'])}; deciler χ² {p_phrase(r['chi2_p'])}"
        )
    return lines


def prior_lines(prior: pl.DataFrame) -> list[str]:
    """L1420/L1087: mean net sick days before the spell start and before the index."""
    lines = []
    for r in prior.filter(pl.col("statistic") == "mean").iter_rows(named=True):
        lines.append(
            "L1420 ”längre och mer omfattande sjukfrånvaro före”: nettosjukdagar under de "
            f"{r['window_days']} dagarna före {words.value(r['anchor'])}, insats "
            f"{_show(r['treated'])} mot kontroll {_show(r['control'])}, skillnad "
            f"{_show(r['difference'])} (95 % KI {_ci(r['diff_ci_low'], r['diff_ci_high'])}; "
            f"{words.value(r['diff_method'])})"
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
            parts.append(f"{name} {cell(str(max(shown)), 'stat')} ({above} av {len(shown)})")
    if not parts:
        return []
    return [
        "L1378 ”regionerna når samma grupper”: största |SMD| för varje regions rader i "
        "Tabell 2 mot alla i insatsgruppen (och hur många av de visade raderna som överstiger "
        f"{cell(str(threshold), 'stat')}): " + ", ".join(parts) + " (table2_by_region_smd.csv)"
    ]


def b5_lines(b5: pl.DataFrame) -> list[str]:
    """L1481: share of B5's persons with a spell ending in the months before the start month."""
    rows = b5.filter(pl.col("length_class") == ALL_LENGTHS)
    parts = [
        f"{r['group']} {_show(r['percent'], 'percent')} % (95 % KI "
        f"{_ci(r['ci_low'], r['ci_high'], 'percent')})"
        for r in rows.iter_rows(named=True)
    ]
    if not parts:
        return []
    months = rows["months_before"][0]
    return [
        "L1481 ”i de flesta fall ett sjukfall inom tre månader före”: bland B5:s personer "
        f"slutade en annan sjukperiod under de {months} månaderna före startmånaden för "
        + "; ".join(parts)
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
