"""The Kaplan-Meier figure (`figures/km.png`): step curves with CI bands per group."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import polars as pl
from matplotlib.figure import Figure

from pipeline.report.labels import GROUP_LABEL

X_LABEL = "Dagar från index"
Y_LABEL = "Andel fortfarande sjukskrivna"


def km_figure(
    km_table: pl.DataFrame, title: str, labels: Mapping[Any, str] | None = None
) -> Figure:
    """A matplotlib Figure of Kaplan-Meier step curves with CI bands, one per group.

    `km_table` is `pipeline.stats.km.kaplan_meier`'s frame (survival 0-1 by time, days).
    Swedish axis labels (`X_LABEL`, `Y_LABEL`); `labels` maps group values to legend
    text, default `report.labels.GROUP_LABEL` (Insats / Kontroll), else the value as text.
    """
    labels = GROUP_LABEL if labels is None else labels
    fig = Figure(figsize=(7, 4.5), dpi=150)
    ax = fig.subplots()
    for i, value in enumerate(km_table["group"].unique().sort().to_list()):
        sub = km_table.filter(pl.col("group") == value)
        color = f"C{i}"
        time = sub["time"].to_numpy()
        label = labels.get(value, str(value))
        ax.step(time, sub["survival"].to_numpy(), where="post", color=color, label=label)
        ax.fill_between(
            time,
            sub["ci_low"].to_numpy(),
            sub["ci_high"].to_numpy(),
            step="post",
            color=color,
            alpha=0.2,
            linewidth=0,
        )
    ax.set(xlabel=X_LABEL, ylabel=Y_LABEL, title=title, ylim=(0, 1.02))
    ax.set_xlim(left=0)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right")
    return fig
