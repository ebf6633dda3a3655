"""The report's sentences in Swedish: the direction of every treated-vs-control comparison of
B4–B6 and Table 3 (§10 item 40), from income_directions.csv read as text. Numbers as
stored, printed in Swedish format (`numbers.cell`); nothing is computed."""

from __future__ import annotations

import polars as pl

from pipeline.report import words
from pipeline.report.formatting import ALPHA
from pipeline.report.numbers import cell, interval, p_phrase, sv

SIDE = {"treated": "insatsgruppen", "controls": "kontrollgruppen"}


def direction_line(r: dict[str, str | None]) -> str:
    """One comparison of income_directions.csv as a Swedish sentence."""
    where = [r["table"], r["block"], r["row"], r["length_class"] or r["income"]]
    label = ", ".join(v for v in where if v)
    if r["suppressed"] == "true":
        return f"{label}: visas inte (en cell är under gränsen för röjandekontroll)"
    if not r["diff_pp"]:
        return f"{label}: ingen jämförelse (en grupp är tom)"
    p = (
        p_phrase(r["p_value"]) + (r["stars"] or "")
        if r["p_value"] not in ("", "NaN")
        else "inget p"
    )
    text = (
        f"{label}: insats {cell(r['percent_treated'], 'percent')} % mot kontroll "
        f"{cell(r['percent_control'], 'percent')} %, {words.value(r['direction'] or '')}, "
        f"skillnad {cell(r['diff_pp'], 'pp')} procentenheter (95 % KI "
        f"{interval(r['diff_ci_low'], r['diff_ci_high'], 'pp')}), {p}"
    )
    if r["p_unadjusted"] != r["p_value"]:
        text += f"; ojusterat {p_phrase(r['p_unadjusted'])}"
    if r["ame_pp"] and r["ame_pp"] != "NaN":
        text += (
            f"; justerad skillnad {cell(r['ame_pp'], 'pp')} procentenheter (95 % KI "
            f"{interval(r['ame_ci_low'], r['ame_ci_high'], 'pp')})"
        )
    alpha = sv(ALPHA, 2)
    if r["significant_for"] and r["table"] == "B6":  # a background share: larger, not better
        text += f"; signifikant större andel i {SIDE[r['significant_for']]} (p < {alpha})"
    elif r["significant_for"]:
        # the side is the tested estimate's: the AME's when stars come from the model
        basis = "justerat, " if r["p_value"] == r["p_adjusted"] else ""
        text += f"; {basis}signifikant (p < {alpha}) till förmån för {SIDE[r['significant_for']]}"
    return text


def directions(rows: pl.DataFrame) -> list[str]:
    """One sentence per comparison of income_directions.csv (text columns)."""
    return [direction_line(r) for r in rows.iter_rows(named=True)]
