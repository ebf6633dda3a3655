"""Figure 5 (report §3.5): GC001 per region, in the region survey and in the registers."""

from __future__ import annotations

import matplotlib.pyplot as plt
import polars as pl
from matplotlib.figure import Figure


def figure5(table: pl.DataFrame) -> Figure:
    """Survey counts 2023 and 2024 per region (bars) and register counts (markers), from
    `registered_vs_reported`'s rows (region, region_name, year, antal_insatser, registered)."""
    part = table.filter(pl.col("year").is_in([2023, 2024])).sort("region")
    names = part["region_name"].unique(maintain_order=True).to_list()
    fig, ax = plt.subplots(figsize=(10, 4.8), dpi=120)
    for i, year in enumerate((2023, 2024)):
        rows = part.filter(pl.col("year") == year)
        xs = [names.index(n) + (i - 0.5) * 0.4 for n in rows["region_name"]]
        ax.bar(xs, rows["antal_insatser"].fill_null(0), 0.4, label=f"Regionenkät {year}")
        ax.scatter(
            xs,
            rows["registered"],
            marker="_",
            s=120,
            color="black",
            label="Registrerade (GC001)" if i == 0 else None,
            zorder=3,
        )
    ax.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("Antal koordineringsinsatser")
    ax.set_title(
        "Figur 5 Koordineringsinsatser per region enligt regionenkäten, och i registren",
        fontsize=10,
    )
    ax.legend(fontsize=7)
    return fig
