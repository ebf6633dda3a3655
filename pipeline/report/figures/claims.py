"""The claims stage's figures (analysis-spec.md §4.12): the GC001 life table and the case's
rank in its risk set."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import polars as pl
from matplotlib.figure import Figure

from pipeline.report import words
from pipeline.report.labels import ALL

LEVEL_LABEL = {
    ALL: ALL,
    "primary_care": "Primärvård",
    "specialised": "Specialiserad vård",
    "unknown": "Okänd vårdnivå",
}


def life_table_rates(long: pl.DataFrame) -> Figure:
    """Rate of the first GC001 per 1 000 spell-days by band, per care level, with 95 % CIs
    (`long`: the claims stage's gc001_life_table rows)."""
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=120)
    for i, (level, part) in enumerate(long.group_by("care_level", maintain_order=True)):
        if part["rate_per_1000"].is_null().all():
            continue
        shown = part.with_columns(
            pl.col("rate_per_1000", "ci_low", "ci_high").fill_null(float("nan"))
        )
        mid = (shown["day_from"] + shown["day_to"]) / 2 + (i - 1) * 2
        rate = shown["rate_per_1000"]  # NaN where hidden: the line breaks there
        ax.errorbar(
            mid,
            rate,
            yerr=[(rate - shown["ci_low"]).clip(0), (shown["ci_high"] - rate).clip(0)],
            marker="o",
            markersize=3,
            capsize=2,
            label=LEVEL_LABEL.get(str(level[0]), str(level[0])),
        )
    ax.set_xlabel("Dag i sjukperioden")
    ax.set_ylabel("Första GC001 per 1 000 sjukdagar i risk")
    ax.set_title("Första koordineringsinsatsen efter dag i sjukperioden (livslängdstabell)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def rank_deciles(deciles: pl.DataFrame) -> Figure:
    """Observed vs expected cases per decile of the randomised rank, one panel per design
    (`deciles`: design, decile, observed, expected)."""
    designs = deciles["design"].unique(maintain_order=True).to_list()
    fig, axes = plt.subplots(1, len(designs), figsize=(4 * len(designs), 3.5), dpi=120)
    for ax, design in zip(np.atleast_1d(axes), designs, strict=True):
        part = deciles.filter(pl.col("design") == design)
        shown = part.filter(pl.col("observed").is_not_null())
        ax.bar(shown["decile"], shown["observed"], color="#4477aa", label="Fall")
        ax.plot(part["decile"], part["expected"], "k--", label="Likformig")
        ax.set_title(words.value(design), fontsize=9)
        ax.set_xlabel("Decil av fallets rang (sjukperiodens längd)")
        ax.set_xticks(range(1, int(part["decile"].max()) + 1))
    np.atleast_1d(axes)[0].set_ylabel("Antal matchade set")
    np.atleast_1d(axes)[0].legend(fontsize=8)
    fig.suptitle("Fallets rang bland kontrollerna i sitt riskset", fontsize=10)
    return fig
