"""Figures 8 and 9 (analysis-spec.md §4.2-4.3): days from the spell start to the first GC001."""

from __future__ import annotations

import matplotlib.pyplot as plt
import polars as pl
from matplotlib.figure import Figure

from pipeline.report.labels import CARE_LEVEL_LABEL


def days_by_year(
    data: pl.DataFrame, series: str, labels: dict[str, str], title: str, show_mean: bool
) -> Figure:
    """Line plot of median (solid) and optionally mean (dashed) days per year, one line per
    `series` value (shown by `labels`)."""
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=120)
    for key in sorted(data[series].unique().to_list()):
        part = data.filter(pl.col(series) == key).sort("year")
        line = ax.plot(
            part["year"], part["median_days"], marker="o", label=f"{labels.get(key, key)}, median"
        )
        if show_mean:
            ax.plot(
                part["year"],
                part["mean_days"],
                linestyle="--",
                color=line[0].get_color(),
                label=f"{labels.get(key, key)}, medelvärde",
            )
    ax.set_xlabel("År")
    ax.set_ylabel("Dagar från sjukperiodens start")
    ax.set_title(title, fontsize=10)
    if data.is_empty():  # every value hidden by the disclosure control
        hidden = "Inga visade värden (röjandekontroll)"
        ax.text(0.5, 0.5, hidden, ha="center", transform=ax.transAxes)
    else:
        ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return fig


def figure8(data: pl.DataFrame) -> Figure:
    """Figure 8 from `figure8.csv`'s rows: mean and median days per care level and year (main
    variant, shown rows only)."""
    return days_by_year(
        data.filter(pl.col("variant") == "main").drop_nulls("median_days"),
        "care_level_group",
        CARE_LEVEL_LABEL,
        "Figur 8 Dagar från sjukperiodens start till första koordineringsinsatsen",
        show_mean=True,
    )


def figure9(data: pl.DataFrame) -> Figure:
    """Figure 9 from `figure9.csv`'s rows: median days per diagnosis and year (shown rows)."""
    return days_by_year(
        data.drop_nulls("median_days"),
        "diagnosis",
        {},
        "Figur 9 Mediandagar till första koordineringsinsatsen, primärvård, per diagnosgrupp",
        show_mean=False,
    )
