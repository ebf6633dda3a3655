"""Figures 13 and 14 (analysis-spec.md §4.7-4.8): income within 12 months, by income before."""

from __future__ import annotations

import matplotlib.pyplot as plt
import polars as pl
from matplotlib.figure import Figure

from pipeline.report.income_tables import GROUPS
from pipeline.report.labels import LENGTH_CLASSES


def shares(data: pl.DataFrame, figure: str, title: str) -> Figure:
    """Grouped bars of `figure`'s shown shares (percent) with 95 % CIs, one bar per length class
    (not pooled) and group, from `figures13_14.csv`'s rows."""
    shown = ~pl.col("suppressed") & pl.col("percent").is_not_null()
    part = data.filter((pl.col("figure") == figure) & shown)
    series = part["series"].unique(maintain_order=True).to_list()
    bars = [(length, g) for length in LENGTH_CLASSES[:2] for g, _ in GROUPS]
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=120)
    width = 0.8 / max(len(bars), 1)
    for i, (length, group) in enumerate(bars):
        cell = part.filter((pl.col("length_class") == length) & (pl.col("group") == group))
        xs, ys, err_lo, err_hi = [], [], [], []
        for j, name in enumerate(series):
            row = cell.filter(pl.col("series") == name)
            if row.height:
                xs.append(j + (i - len(bars) / 2 + 0.5) * width)
                ys.append(row["percent"].item())
                err_lo.append(row["percent"].item() - row["ci_low"].item())
                err_hi.append(row["ci_high"].item() - row["percent"].item())
        ax.bar(
            xs, ys, width, yerr=[err_lo, err_hi], capsize=2, label=f"{group}, sjukperiod {length}"
        )
    ax.set_xticks(range(len(series)), series)
    ax.set_ylabel("Andel (%) inom 12 månader")
    ax.set_ylim(0, 105)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7)
    ax.grid(axis="y", alpha=0.3)
    return fig


def figure13(data: pl.DataFrame) -> Figure:
    """Figure 13: employees with income before (B4)."""
    return shares(data, "figure13", "Figur 13 Anställda med inkomst före: inkomst inom 12 månader")


def figure14(data: pl.DataFrame) -> Figure:
    """Figure 14: employees without income before (B5)."""
    return shares(data, "figure14", "Figur 14 Anställda utan inkomst före: inkomst inom 12 månader")
