"""The attacker's reading of Table 2 by region (§4.12, `table2_by_region.csv`).

The treated person rows, one family per block: atoms are (region, category) for every
analysed region and every category a person can have, including one the table does not
print (a missing value). A printed "n (percent)" cell gives its count, and its rounded
percent bounds its column's block total; "Alla" is every region. Targets: each count and
each region's persons without a printed category. Linked to the cohort's treated person
rows, and to each region's treated person rows, which every block counts alike: so a
region's complete block (age) against an incomplete one (education) is read together.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from pipeline.core import config
from pipeline.rules.regions import region_of
from tests.helpers import printed_cell
from tests.reference.attack.lp import Family, Link, cells_of

MEAN_AGE = "Medelålder"  # a row of means, not counts


def region_families(
    cohort: pl.DataFrame, tables: Path, threshold: int, blocks: dict
) -> list[Family]:
    """One family per block of `blocks` (name -> (cohort column, labels or None))."""
    cfg = config.compose([])
    names = {str(k): str(v) for k, v in dict(cfg.codes.regions).items()}
    table = pl.read_csv(tables / "table2_by_region.csv", infer_schema=False)
    regions = [c for c in table.columns if c not in ("block", "category", "Alla")]
    treated = cohort.filter("person_row", "treated").with_columns(
        region_of(str(cfg.cohort.region_basis))
    )
    families = []
    for block, (column, labels) in blocks.items():
        printed = table.filter(pl.col("block") == block)
        if printed.is_empty():
            continue
        value = pl.col(column).cast(pl.String)
        people = treated.select(
            pl.col("region").replace_strict(names, default=None).alias("region"),
            (value.replace_strict(labels, default=None) if labels else value).alias("category"),
        )
        cats = [c for c in printed["category"].to_list() if c not in ("Totalt", MEAN_AGE)]
        seen_cats = sorted(set(people["category"].to_list()) - set(cats), key=str)
        atoms = [(r, c) for r in regions for c in (*cats, *seen_cats)]
        counts = dict.fromkeys(atoms, 0)
        for r, c, n in people.group_by("region", "category").len().iter_rows():
            counts[(r, c)] += n

        def indicator(
            region: str, category: str, cats: list = cats, atoms: list = atoms
        ) -> np.ndarray:
            """Atoms of a printed cell: a category (Totalt: any printed one), a region or Alla."""
            return np.array(
                [
                    (region in ("Alla", r))
                    and ((c in cats) if category == "Totalt" else c == category)
                    for r, c in atoms
                ],
                dtype=float,
            )

        x_true = np.array([counts[a] for a in atoms], dtype=float)
        truth: dict = {}
        family = Family(f"region {block}", len(atoms), truth, threshold)
        for region in (*regions, "Alla"):
            for category in (*cats, "Totalt"):
                row = indicator(region, category)
                truth[(category, region)] = round(float(row @ x_true))
                family.targets[(category, region)] = row
            missing = np.array(
                [(region in ("Alla", r)) and c not in cats for r, c in atoms], dtype=float
            )
            truth[("missing", region)] = round(float(missing @ x_true))
            family.targets[("missing", region)] = missing
        for r in printed.iter_rows(named=True):
            if r["category"] == MEAN_AGE:
                continue
            for region in (*regions, "Alla"):
                cell = printed_cell(r[region])
                if cell is None:
                    continue
                n, pct = cell
                name = (r["category"], region)
                family.see("table2_by_region", name, indicator(region, r["category"]), n)
                if pct is not None and r["category"] != "Totalt":
                    family.percent_of(indicator(region, "Totalt"), n, pct)
        every = np.ones(len(atoms))
        family.links = [Link(every, cells_of(treated=True, person_row=True))] + [
            Link(
                np.array([a[0] == region for a in atoms], dtype=float),
                frozenset({("region", region)}),
            )
            for region in regions
        ]
        families.append(family)
    return families
