"""The first page's headline results, one line per analysis, read from the published tables
(text columns, withheld cells ".."): the estimate, its 95 % CI and its n as printed.

A headline quotes cells; it computes nothing. A withheld or extrapolated cell reads "..".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import polars as pl

from pipeline.report import words
from pipeline.report.html import Headline
from pipeline.report.labels import ALL_LENGTHS, GROUP_LABEL, TOTAL
from pipeline.report.numbers import cell, interval
from pipeline.report.tables import table_row

TREATED, CONTROL = GROUP_LABEL[True], GROUP_LABEL[False]
Reader = Callable[[str], pl.DataFrame]


def _show(row: Mapping[str, str], column: str, kind: str) -> str:
    """A cell as printed, ".." when withheld or absent."""
    return cell(row.get(column), kind) or words.HIDDEN_CELL


def _ci(row: Mapping[str, str], low: str, high: str, kind: str) -> str:
    """The 95 % CI of a row as printed, ".." when a bound is withheld or absent."""
    return interval(row.get(low), row.get(high), kind) or words.HIDDEN_CELL


def _pair(a: str, b: str) -> str:
    """Two groups' values side by side: "insats / kontroll"."""
    return f"{a} / {b}"


def population(table2: pl.DataFrame) -> list[Headline]:
    """Persons in the treated and control groups (Table 2's sex block totals)."""
    t, c = (table_row(table2, block="Kön", category=TOTAL, group=g) for g in (TREATED, CONTROL))
    n = _pair(_show(t, "n", "count"), _show(c, "n", "count"))
    return [Headline("Population (Tabell 2)", "Personer, insats / kontroll", n, "", "", "table2")]


def income(adjusted: pl.DataFrame, long: pl.DataFrame) -> list[Headline]:
    """Income after the spell: treated − control, adjusted (percentage points), for B4's
    any income and regained income at 12 months and Table 3's durable income."""
    lines = []
    for table, outcome, row_table, block, row, what, anchor in (
        ("B4/B5", "any_income_12", "B4", "Någon inkomst", "<12 mån",
         "Någon inkomst inom 12 månader", "table_b4"),
        ("B4/B5", "regained_12", "B4", "Tidigare inkomstnivå", "<12 mån",
         "Återfår tidigare inkomstnivå inom 12 månader", "table_b4"),
        ("Table 3", "durable_any", "Tabell 3", "Haft inkomst före", "Någon inkomst efter",
         "Varaktig inkomst efter 12 månader", "table3"),
    ):  # fmt: skip
        model = f"{table}|income_before|{ALL_LENGTHS}|{outcome}"
        r = table_row(adjusted, model=model)
        t, c = (
            table_row(
                long, table=row_table, block=block, row=row, length_class=ALL_LENGTHS, group=g
            )
            for g in (TREATED, CONTROL)
        )
        shares = _pair(_show(t, "percent", "percent"), _show(c, "percent", "percent"))
        lines.append(
            Headline(
                "Inkomst efter sjukperioden, med inkomst före",
                f"{what}: insats / kontroll {shares} %; justerad skillnad (procentenheter)",
                _show(r, "ame_pp", "pp"),
                _ci(r, "ame_ci_low", "ame_ci_high", "pp"),
                _show(r, "n", "count"),
                anchor,
            )
        )
    return lines


def sick_days(extra: pl.DataFrame, points: tuple[str, ...] = ("0.0", "180.0")) -> list[Headline]:
    """Extra sick days after the index (treated − control, negative binomial, risk-set
    design) at 0 and 180 prior sick days."""
    lines = []
    for prior in points:
        r = table_row(extra, design="riskset", prior_days=prior)
        lines.append(
            Headline(
                "Sjukdagar efter insatsen",
                f"Fler sjukdagar under 365 dagar efter index vid {cell(prior, 'code')} tidigare "
                "sjukdagar (insats − kontroll, riskset)",
                _show(r, "extra_days", "days"),
                _ci(r, "ci_low", "ci_high", "days"),
                _show(r, "n", "count"),
                "nb_extra_days",
            )
        )
    return lines


def fk(registrations: pl.DataFrame) -> list[Headline]:
    """Any FK meeting or plan during the spell: treated − control (percentage points)."""
    t, c = (table_row(registrations, registration="any_fk", group=g) for g in (TREATED, CONTROL))
    shares = _pair(_show(t, "percent", "percent"), _show(c, "percent", "percent"))
    return [
        Headline(
            "Försäkringskassans registreringar (§5.3)",
            f"Något avstämningsmöte eller någon plan: insats / kontroll {shares} %; skillnad "
            "(procentenheter)",
            _show(t, "diff_pp", "pp"),
            _ci(t, "diff_ci_low", "diff_ci_high", "pp"),
            _pair(_show(t, "n", "count"), _show(c, "n", "count")),
            "fk_registrations",
        )
    ]


def registered(vs_reported: pl.DataFrame) -> list[Headline]:
    """Registered GC001 against the regions' reported counts (§3.5): the lowest and highest
    shown share over regions and years, and how many region-years show one."""
    shares = [v for v in vs_reported["register_share"].to_list() if v not in (None, "", "..")]
    if not shares:
        span = words.HIDDEN_CELL
    else:
        low, high = min(shares, key=float), max(shares, key=float)
        span = f"{cell(low, 'share')}–{cell(high, 'share')} %"
    return [
        Headline(
            "Registrerade och rapporterade insatser (§3.5)",
            "Registrerade GC001 i procent av regionernas rapporterade antal, lägsta–högsta "
            "region och år",
            span,
            "",
            f"{cell(str(len(shares)), 'count')} regionår",
            "registered_vs_reported",
        )
    ]


def headlines(read: Reader) -> list[Headline]:
    """The first page's lines, from the tables `read(file)` returns (text columns)."""
    return [
        *population(read("table2_long.csv")),
        *income(read("income_adjusted.csv"), read("income_tables_long.csv")),
        *sick_days(read("nb_extra_days.csv")),
        *fk(read("fk_registrations.csv")),
        *registered(read("registered_vs_reported.csv")),
    ]
