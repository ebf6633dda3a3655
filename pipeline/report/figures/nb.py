"""The extra-sick-days figure of the negative binomial models (analysis-spec.md §6.5)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import polars as pl
from matplotlib.figure import Figure

DESIGN_LABEL = {"riskset": "Riskmängd (matchade set)", "report": "Rapportens design"}


def extra_days(curves: pl.DataFrame, points: pl.DataFrame) -> Figure:
    """Extra sick days of the treated by prior sick days, both designs, 95 % CI bands
    (`curves`: design, prior_days, extra_days, ci_low, ci_high; `points`: the marked days)."""
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=120)
    for design, label in DESIGN_LABEL.items():
        part = curves.filter(pl.col("design") == design).sort("prior_days")
        if part.height == 0:
            continue
        line = ax.plot(part["prior_days"], part["extra_days"], label=label)
        ax.fill_between(
            part["prior_days"],
            part["ci_low"],
            part["ci_high"],
            alpha=0.2,
            color=line[0].get_color(),
        )
        dots = points.filter(pl.col("design") == design)
        ax.scatter(dots["prior_days"], dots["extra_days"], color=line[0].get_color(), zorder=3)
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.set_xlabel("Sjukdagar under 365 dagar före index")
    ax.set_ylabel("Fler sjukdagar efter index (insats − kontroll)")
    ax.set_title(
        "Extra sjukdagar efter koordineringsinsats (negativ binomial, 95 % KI)", fontsize=10
    )
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig
