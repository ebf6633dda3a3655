"""Numbers as the Swedish report prints them: narrow no-break space between thousands,
decimal comma, a true minus sign, "–" for ranges. The CSV files keep plain numbers."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

from pipeline.report import words

THIN = "\u202f"  # narrow no-break space, the thousands separator
MINUS = "\u2212"
DECIMALS = {"count": 0, "sek": 0, "years": 0, "percent": 1, "pp": 1, "share": 1, "days": 1,
            "ratio": 2}  # fmt: skip
SIGNIFICANT = 3  # digits of a `stat` cell that is not an integer
_N_PCT = re.compile(r"^(?P<n>-?\d+(?:\.\d+)?)(?: \((?P<pct>-?\d+(?:\.\d+)?)\))?(?P<stars>\**)$")


def sv(number: float, decimals: int = 0) -> str:
    """`number` rounded to `decimals`, Swedish style.

    >>> [sv(48741), sv(12.46, 1), sv(-0.04, 1), sv(-1234.5, 1), sv(1234567)]
    ['48\u202f741', '12,5', '0,0', '−1\u202f234,5', '1\u202f234\u202f567']
    """
    text = f"{abs(number):,.{decimals}f}".replace(",", THIN).replace(".", ",")
    negative = number < 0 and any(c not in "0,\u202f" for c in text)
    return (MINUS if negative else "") + text


def significant(number: float, digits: int = SIGNIFICANT) -> str:
    """`number` to `digits` significant digits without trailing zeros, Swedish style; an
    integer, or a number of `digits` or more integer digits, as a whole number.

    >>> [significant(0.57342), significant(11.548), significant(206.1), significant(0.0800)]
    ['0,573', '11,5', '206', '0,08']
    >>> [significant(12360.0), significant(-0.00004998)]
    ['12\u202f360', '−5,00e−05']
    """
    if number == int(number) or abs(number) >= 10 ** (digits - 1):
        return sv(number, 0)
    if abs(number) < 1e-4:
        text = f"{abs(number):.{digits - 1}e}".replace(".", ",").replace("-", MINUS)
        return (MINUS if number < 0 else "") + text
    decimals = digits - 1 - math.floor(math.log10(abs(number)))
    text = sv(number, decimals)
    return text.rstrip("0").rstrip(",") if "," in text else text


def p_value(number: float) -> str:
    """A p-value as printed: "<0,001" below 0.001, else three decimals.

    >>> [p_value(9.2e-60), p_value(0.0092), p_value(0.6157)]
    ['<0,001', '0,009', '0,616']
    """
    return "<0,001" if number < 0.001 else sv(number, 3)


def p_phrase(text: str | None) -> str:
    """A stored p-value in a sentence: "p < 0,001" or "p = 0,009" ("p dold" when withheld)."""
    if text in (None, "", words.HIDDEN_CELL):
        return "p dold"
    printed = p_value(float(text))
    return f"p < {printed[1:]}" if printed.startswith("<") else f"p = {printed}"


def n_pct(text: str) -> str:
    """A stored "n (pct)" cell (stars kept) in Swedish format: "48741 (70)" -> "48 741 (70)"."""
    match = _N_PCT.match(text)
    if not match:
        return text
    out = sv(float(match["n"]))
    if match["pct"] is not None:
        out += f" ({sv(float(match['pct']))})"
    return out + match["stars"]


def cell(text: str | None, kind: str, labels: Mapping[str, str] | None = None) -> str:
    """One stored cell (text as written in the CSV) as the report prints it, by the column's
    kind (`words.COLUMNS`); ".." (withheld) and empty cells as they are."""
    if text is None or text in ("", words.HIDDEN_CELL):
        return text or ""
    if kind in ("text", "flag"):
        return words.value(text, labels)
    if kind == "code":
        return text.removesuffix(".0")
    if kind == "n_pct":
        return n_pct(text)
    try:
        number = float(text)
    except ValueError:
        return words.value(text, labels)
    if math.isnan(number):
        return ""
    if kind == "p":
        return p_value(number)
    if kind == "share":
        return sv(100 * number, DECIMALS[kind])
    if kind in DECIMALS:
        return sv(number, DECIMALS[kind])
    return significant(number)


def interval(low: str | float | None, high: str | float | None, kind: str = "stat") -> str:
    """A confidence interval as printed: "1,1–5,6", or "−5,8 – −4,4" when a bound is negative;
    empty when a bound is missing or withheld."""
    texts = [cell(None if v is None else str(v), kind) for v in (low, high)]
    if any(t in ("", words.HIDDEN_CELL) for t in texts):
        return ""
    joiner = " – " if any(t.startswith(MINUS) for t in texts) else "–"
    return joiner.join(texts)


TEXT_KINDS = ("text", "flag", "code", "n_pct")


def number_of(text: str | None, kind: str) -> float | None:
    """The number a workbook cell holds for a stored cell: None for text, withheld or empty
    cells; a share as a percent (as the header says)."""
    if kind in TEXT_KINDS or text in (None, "", words.HIDDEN_CELL):
        return None
    try:
        number = float(text)
    except ValueError:
        return None
    if math.isnan(number) or math.isinf(number):
        return None
    return 100 * number if kind == "share" else number
