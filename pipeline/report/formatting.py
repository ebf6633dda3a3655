"""How the report and the workbook show a number written in a table CSV."""

from __future__ import annotations

import math

import polars as pl

SIGNIFICANT = 4  # digits shown for non-integer numbers in the HTML and the workbook
ALPHA = 0.05  # a comparison is called significant at p < ALPHA (the stars start at 0.01)


def display(value: str | None) -> str:
    """A CSV cell as shown: integers and text as written, other numbers to 4 significant digits.

    >>> [display(v) for v in ["12", "8.743169398907105", "9.17e-60", "abc", None, ""]]
    ['12', '8.743', '9.17e-60', 'abc', '', '']
    """
    if value is None or value == "":
        return ""
    try:
        number = float(value)
    except ValueError:
        return value
    if math.isnan(number) or value.lstrip("-").isdigit():
        return value
    return f"{number:.{SIGNIFICANT}g}"


def whole_percent(column: str = "percent") -> pl.Expr:
    """`column` (percent) as a printed whole number (Int64), rounded half up (analysis-spec §0);
    NaN (a share of no persons) gives null."""
    return pl.col(column).fill_nan(None).round(0, mode="half_away_from_zero").cast(pl.Int64)


def stars(p: float) -> str:
    """Significance stars of the report (L1532): "***" p < 0.001, "**" p < 0.01, else "".

    The report has no "*" level (analysis-spec.md §4.9, §5.5); NaN gives "".

    >>> [stars(p) for p in (0.0005, 0.001, 0.005, 0.01, 0.04, float("nan"))]
    ['***', '**', '**', '', '', '']
    """
    if p < 0.001:
        return "***"
    if p < 0.01:
        return "**"
    return ""
