"""Figures: every matplotlib figure of the pipeline, and the one function that writes them.

matplotlib is imported only under `pipeline.report`; the non-interactive Agg
backend is set here, once, before pyplot is imported anywhere.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from pipeline.core.io import atomic_path

# No software version or date in the PNG metadata: the same figure gives the same bytes.
PNG_METADATA: dict[str, Any] = {"Software": None}


def write_figure(fig: Any, path: str | Path) -> Path:
    """Lay out `fig`, write it as PNG to `path` atomically, close it; returns path."""
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", metadata=PNG_METADATA)
    plt.close(fig)
    return Path(path)
