"""Shared builders and checkers for the tests; a helper module, not a test module.

Test modules (test_*.py, conftest.py) import shared code only from here and from
tests/reference/ (independent reference implementations), never from each other.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from omegaconf import OmegaConf
from scipy.optimize import linprog

from pipeline.core import config
from pipeline.core.contract import TABLES
from pipeline.stages.stage import StageResult, stage_frames
from pipeline.stages.stage.spec import CodeLists
from pipeline.stages.synth.params import SynthParams

# --- synthetic deliveries -------------------------------------------------------------------

E2E_PERSONS = 20_000


def scratch_paths(base: Path) -> list[str]:
    """CLI overrides that put a run's delivery, truth and outputs under `base`."""
    return [
        f"synth.out_dir={base}/delivery",
        f"synth.truth_dir={base}/truth",
        f"paths.staged={base}/staged",
        f"paths.quarantine={base}/quarantine",
        f"paths.outputs={base}/outputs",
    ]


def synth_params(*overrides: str) -> SynthParams:
    """Generator parameters for the tiny size with `overrides` (Hydra syntax)."""
    cfg = config.compose(["synth.size=tiny", *overrides])
    return SynthParams.from_config(cfg.synth, cfg.codes)


# --- disclosure -----------------------------------------------------------------------------


def leaking_cells(counts, constraints, hidden) -> list[int]:
    """Hidden cells with a positive count pinned to one value by the shown cells (LP bounds
    coincide). A hidden zero under a total shown as zero is pinned too, but tells nothing
    about any person, so it is not counted as a leak."""
    ids = [i for i, h in enumerate(hidden) if h]
    col = {c: j for j, c in enumerate(ids)}
    a_eq, b_eq = [], []
    for total, parts in constraints:
        row, rhs = np.zeros(len(ids)), 0.0
        for cell, sign in [(total, -1.0), *((p, 1.0) for p in parts)]:
            if cell in col:
                row[col[cell]] += sign
            else:
                rhs -= sign * counts[cell]
        if row.any():
            a_eq.append(row)
            b_eq.append(rhs)
    leaks = []
    for cell, j in col.items():
        objective = np.zeros(len(ids))
        objective[j] = 1
        lo = linprog(objective, A_eq=a_eq or None, b_eq=b_eq or None, bounds=(0, None))
        hi = linprog(-objective, A_eq=a_eq or None, b_eq=b_eq or None, bounds=(0, None))
        unbounded = hi.status == 3  # scipy status 3: unbounded
        if not unbounded and abs(lo.fun + hi.fun) < 1e-6 and counts[cell] > 0:
            leaks.append(cell)
    return leaks


# --- docs/schemas.md ------------------------------------------------------------------------


def documented_columns(heading: str) -> list[tuple[str, str]]:
    """(column, type) rows of the table under `### `heading`` in docs/schemas.md."""
    text = (config.ROOT / "docs" / "schemas.md").read_text(encoding="utf-8")
    section = text.split(f"### `{heading}`\n", 1)[1]
    table = section.split("| column | type | unit | meaning | made by |\n", 1)[1]
    rows = []
    for line in table.splitlines()[1:]:  # after the |---| line
        if not line.startswith("|"):
            break
        name, dtype = line.split("|")[1:3]
        rows.append((name.strip().strip("`"), dtype.strip()))
    return rows


# --- small deliveries for the `stage` tests: valid rows per table, as text and typed --------

CODES = CodeLists.from_mapping(OmegaConf.load(config.CONF_DIR / "codes" / "default.yaml"))

# Three valid rows per table, every cell as delivered text (None = empty cell).
BASE: dict[str, list[tuple[str | None, ...]]] = {
    "sjukpenning": [
        ("1", "2019-01-01", "2019-01-31", "100", "F43.8", "anstalld"),
        ("2", "20190301", "20190315", "50", "M54", "arbetslos"),
        ("3", "2019-05-01", "2019-05-01", "25", None, "anstalld_dag1"),
    ],
    "vardkontakter": [
        ("1", "2019-01-05", "GC001", "01", "primarvard", "offentlig"),
        ("2", "20190210", None, "14", "sluten", "privat"),
        ("3", "2019-03-01", "DV077 AW026", "25", "specialiserad_oppen", "offentlig"),
    ],
    "agi": [
        ("1", "201901", "555", "25000"),
        ("1", "201901", "556", "-300"),
        ("2", "201912", "555", "0"),
    ],
    "bakgrund": [
        ("1", "2019", "2", "1980", "sverige", "G", "5", "01"),
        ("2", "2019", "1", "1975", "eu", "Ä", "1", "14"),
        ("1", "2024", "2", "1980", "sverige", "G", None, "01"),
    ],
    "fk_handelser": [
        ("1", "2019-02-01", "avstamningsmote"),
        ("2", "20190301", "plan_arbetsgivare"),
        ("3", "2019-04-01", "sassam"),
    ],
    "regionenkat": [
        ("01", "2019", "12"),
        ("14", "2019", None),
        ("25", "2020", "0"),
    ],
}

D = dt.date
# BASE as the staged table holds it: contract dtypes, sorted by the staged order.
EXPECTED: dict[str, list[tuple[Any, ...]]] = {
    "sjukpenning": [
        (1, D(2019, 1, 1), D(2019, 1, 31), 100, "F438", "anstalld"),
        (2, D(2019, 3, 1), D(2019, 3, 15), 50, "M54", "arbetslos"),
        (3, D(2019, 5, 1), D(2019, 5, 1), 25, None, "anstalld_dag1"),
    ],
    "vardkontakter": [
        (1, D(2019, 1, 5), "GC001", "01", "primarvard", "offentlig"),
        (2, D(2019, 2, 10), None, "14", "sluten", "privat"),
        (3, D(2019, 3, 1), "DV077 AW026", "25", "specialiserad_oppen", "offentlig"),
    ],
    "agi": [(1, 201901, 555, 25000), (1, 201901, 556, -300), (2, 201912, 555, 0)],
    "bakgrund": [
        (1, 2019, 2, 1980, "sverige", "G", "5", "01"),
        (1, 2024, 2, 1980, "sverige", "G", None, "01"),
        (2, 2019, 1, 1975, "eu", "Ä", "1", "14"),
    ],
    "fk_handelser": [
        (1, D(2019, 2, 1), "avstamningsmote"),
        (2, D(2019, 3, 1), "plan_arbetsgivare"),
        (3, D(2019, 4, 1), "sassam"),
    ],
    "regionenkat": [("01", 2019, 12), ("14", 2019, None), ("25", 2020, 0)],
}


def text_frame(table: str, rows: Sequence[Sequence[str | None]]) -> pl.DataFrame:
    """`rows` (cells as text) as a frame with the contract's column names, all String."""
    names = TABLES[table].names
    return pl.DataFrame(
        [list(r) for r in rows], schema=dict.fromkeys(names, pl.String), orient="row"
    )


def expected_frame(table: str, rows: Sequence[Sequence[Any]] | None = None) -> pl.DataFrame:
    """`rows` (default EXPECTED[table]) as a frame with the staged schema."""
    data = EXPECTED[table] if rows is None else rows
    return pl.DataFrame([list(r) for r in data], schema=TABLES[table].schema, orient="row")


def row(table: str, index: int = 0, **changes: str | None) -> tuple[str | None, ...]:
    """BASE[table][index] with some cells changed."""
    cells = dict(zip(TABLES[table].names, BASE[table][index], strict=True)) | changes
    return tuple(cells.values())


def stage_rows(table: str, rows: Sequence[Sequence[str | None]], decimal: str = ".") -> StageResult:
    """Stage text rows of `table` (one in-memory file labelled "frame")."""
    return stage_frames(text_frame(table, rows), table, CODES, decimal=decimal)


def stage_named(table: str, frames: Mapping[str, pl.DataFrame]) -> StageResult:
    """Stage several in-memory files of `table`."""
    return stage_frames(frames, table, CODES)


def quarantined(result: StageResult) -> list[tuple[int, str]]:
    """(source_row, reason) of each quarantined row, in source order."""
    return list(result.quarantine.collect().select("source_row", "reason").iter_rows())


def gated(
    frame: pl.DataFrame,
    file: str,
    min_count: int = 5,
    published: Mapping[str, pl.DataFrame] | None = None,
) -> pl.DataFrame:
    """`frame` as the publication gate publishes it under the spec of `file` (all text;
    hidden cells ".."), written as a stage writes it (CSV) and read back as text."""
    from pipeline.report.publication import DisclosureRules, publish
    from pipeline.report.publication.specs import SPECS

    spec = next(s for s in SPECS if s.file == file)
    text = pl.read_csv(frame.write_csv().encode(), infer_schema=False)
    protected, _ = publish(text, spec, DisclosureRules(min_count=min_count), published)
    return protected


def value_of(text: str | None) -> float | None:
    """A published cell as the attacker reads it: its number, or None when hidden (".."),
    empty, not a number or not finite."""
    try:
        value = None if text in (None, "", "..") else float(text)
    except ValueError:
        return None
    return value if value is not None and np.isfinite(value) else None


def printed_cell(text: str | None) -> tuple[float, float | None] | None:
    """A printed "n (percent)" cell as the attacker reads it: (n, percent or None), or None
    when hidden, empty or not a count ("1 227 (61)**" -> (1227.0, 61.0))."""
    if text in (None, "", ".."):
        return None
    found = re.match(r"^(\d+)(?:\((\d+)\))?", text.replace(" ", ""))
    if not found:
        return None
    return float(found.group(1)), None if found.group(2) is None else float(found.group(2))


def b3_counts(person_rows: pl.DataFrame, codes: Any) -> pl.DataFrame:
    """Table B3's tidy counts of `person_rows`, as the describe stage counts them."""
    from pipeline.report.table2 import blocks, ownership_labels, table_b3_counts, with_labels

    labelled = with_labels(person_rows, codes)
    return table_b3_counts(labelled, blocks(codes), ownership_labels(codes))
