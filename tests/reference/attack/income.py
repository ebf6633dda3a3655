"""An independent attacker on the published income tables (issue 16): from the row-level
outcomes of a run, not from the gate's relation list.

Every number the income family publishes (Tables B4, B5, 3 as long cells and as printed,
Figures 13-14, the treated-vs-control directions) is written here from the report's
definitions as a count of persons satisfying a predicate. A possible person (an atom)
is a combination of attribute values the attacker knows can occur (`ATTRIBUTE_GROUPS`);
a published number is a sum of atom counts. The attacker knows every shown number (a
shown share with its n gives its count), and for each count
the tables hide or imply (n - count, the persons between two cumulative windows) solves
two linear programs over non-negative atom counts: its lowest and highest possible value.
A count of 1..threshold-1 whose range is narrower than the threshold is a disclosure.
Run on the shared 20 000-person run, on `tiny`, and on the shared run published again
with a higher threshold, where far more cells are hidden.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from tests.helpers import printed_cell, value_of
from tests.reference.attack.inversion import count_from_z_test, n_from_share, n_from_wilson
from tests.reference.attack.lp import Family, Link, cells_of

WINDOWS = (3, 6, 12)


LENGTHS = ("<2 år", "2+ år", "Alla")


GROUPS = {"Insats": True, "Kontroll": False}


# (table, block, population flag, income group, [(row label, outcome)], regained block)
LAYOUT = (
    ("B4", "Någon inkomst", "in_income_tables", "income_before",
     [(f"<{w} mån", f"any_income_{w}") for w in WINDOWS], False),
    ("B4", "Tidigare inkomstnivå", "in_income_tables", "income_before",
     [(f"<{w} mån", f"regained_{w}") for w in WINDOWS], True),
    ("B5", "Någon inkomst", "in_income_tables", "no_income_before",
     [(f"<{w} mån", f"any_income_{w}") for w in WINDOWS], False),
    ("Tabell 3", "Haft inkomst före", "in_table3", "income_before",
     [("Någon inkomst efter", "durable_any"),
      ("Återfår tidigare inkomst efter", "durable_regained")], False),
    ("Tabell 3", "Ingen inkomst före", "in_table3", "no_income_before",
     [("Någon inkomst efter", "durable_any")], False),
)  # fmt: skip


def predicates() -> dict[tuple, pl.Expr]:
    """Person predicates of every count the family can show or imply; key (table, block,
    row, length class, group, what) with what n | count | rest (n - count) | gap (within
    this window but not the one before) | outside (B4's persons the regained rule does
    not apply to: any income's n - the regained block's)."""
    out: dict[tuple, pl.Expr] = {}
    for table, block, flag, income, rows, regained in LAYOUT:
        for length in LENGTHS:
            for group, treated in GROUPS.items():
                pop = pl.col(flag) & pl.col(income).fill_null(False)
                pop = pop & (pl.col("treated") == treated)
                if length != "Alla":
                    pop = pop & (pl.col("length_class") == length)
                if regained:  # and those the regained rule does not apply to
                    applies = pl.col("regained_applies").fill_null(False)
                    out[(table, block, "n", length, group, "outside")] = pop & ~applies
                    pop = pop & applies
                out[(table, block, "n", length, group, "n")] = pop
                out[(table, block, "n", length, group, "count")] = pop
                before = None
                for label, outcome in rows:
                    n = pop & pl.col(outcome).is_not_null()
                    count = n & pl.col(outcome)
                    key = (table, block, label, length, group)
                    out[(*key, "n")] = n
                    out[(*key, "count")] = count
                    out[(*key, "rest")] = n & ~pl.col(outcome)
                    if before is not None and table != "Tabell 3":
                        out[(*key, "gap")] = count & ~pl.col(before)
                    before = outcome
    return out


def observations(tables: Path) -> list[tuple[tuple, float, str]]:
    """(predicate key, value, where) for every number the family shows."""
    seen: list[tuple[tuple, float, str]] = []
    long = pl.read_csv(tables / "income_tables_long.csv", infer_schema=False)
    known: dict[tuple, dict[str, float | None]] = {}
    for r in long.iter_rows(named=True):
        key = (r["table"], r["block"], r["row"], r["length_class"], r["group"])
        n, count = read_back(r)
        known[key] = {"n": n, "count": count, "p": value_of(r["p_unadjusted"])}
        where = f"income_tables_long {key}"
        if n is not None:
            seen.append(((*key, "n"), n, where))
        if count is not None:
            seen.append(((*key, "count"), count, where))
    seen += tested_counts(known)
    prior = pl.read_csv(tables / "table_b5_prior_spell.csv", infer_schema=False)
    for r in prior.iter_rows(named=True):  # its n is B5's population (§4.12)
        n, _ = read_back(r)
        if n is not None:
            key = ("B5", "Någon inkomst", "n", r["length_class"], r["group"], "n")
            seen.append((key, n, "table_b5_prior_spell"))
    for (table, block, row, length, group), value, _pct, where in printed_cells(tables):
        what = "n" if row == "n" else "count"
        seen.append(((table, block, row, length, group, what), value, where))
    figures = pl.read_csv(tables / "figures13_14.csv", infer_schema=False)
    series = {
        "Någon inkomst": ("Någon inkomst", "count"),
        "Ingen inkomst": ("Någon inkomst", "rest"),
        "Återfår tidigare inkomst": ("Tidigare inkomstnivå", "count"),
    }
    for r in figures.iter_rows(named=True):
        table = "B4" if r["figure"] == "figure13" else "B5"
        block, what = series[r["series"]]
        key = (table, block, "<12 mån", r["length_class"], r["group"])
        n, pct, n_ref = value_of(r["n"]), value_of(r["percent"]), value_of(r["n_ref"])
        if n is not None:
            seen.append(((*key, "n"), n, "figures13_14"))
            if pct is not None:
                seen.append(((*key, what), round(pct * n / 100), "figures13_14 percent"))
        if n_ref is not None:
            ref = ("B4", "Någon inkomst", "n", r["length_class"], r["group"], "n")
            seen.append((ref, n_ref, "figures13_14 n_ref"))
    directions = pl.read_csv(tables / "income_directions.csv", infer_schema=False)
    for r in directions.filter(pl.col("table") != "B6").iter_rows(named=True):
        key = (r["table"], r["block"], r["row"], r["length_class"])
        for group, side in (("Insats", "treated"), ("Kontroll", "control")):
            n, pct = value_of(r[f"n_{side}"]), value_of(r[f"percent_{side}"])
            if n is not None:
                seen.append(((*key, group, "n"), n, "income_directions"))
                if pct is not None:
                    seen.append(((*key, group, "count"), round(pct * n / 100), "income_directions"))
    return seen


def read_back(r: dict) -> tuple[float | None, float | None]:
    """(n, count) of a long row as shown or read back from its percent and Wilson CI."""
    n, count, pct = value_of(r["n"]), value_of(r["count"]), value_of(r["percent"])
    low, high = value_of(r["ci_low"]), value_of(r["ci_high"])
    if n is None and count is not None and pct is not None:
        n = n_from_share(count, pct)
    if n is None and count is not None and (low is not None or high is not None):
        n = n_from_wilson(int(count), low, high)
    if count is None and n is not None and pct is not None:
        count = round(pct * n / 100)
    return n, count


def tested_counts(known: dict[tuple, dict[str, float | None]]) -> list[tuple[tuple, float, str]]:
    """Counts the treated-vs-control p-value gives back: a hidden count of a group whose n
    is known, the other group's count and n being known."""
    out = []
    for key, mine in known.items():
        other = known.get((*key[:4], "Kontroll" if key[4] == "Insats" else "Insats"))
        if other is None or mine["count"] is not None or mine["n"] is None:
            continue
        p = mine["p"] if mine["p"] is not None else other["p"]
        if p is None or other["count"] is None or other["n"] is None:
            continue
        x = count_from_z_test(p, int(mine["n"]), int(other["count"]), int(other["n"]))
        if x is not None:
            out.append(((*key, "count"), x, f"income_tables_long {key} p-value"))
    return out


def printed_cells(tables: Path) -> list[tuple[tuple, float, float | None, str]]:
    """(cell key, count, whole percent or None, where) of every shown cell of the printed
    B4, B5 and Table 3."""
    out = []
    for name, table in (("table_b4", "B4"), ("table_b5", "B5"), ("table3", "Tabell 3")):
        printed = pl.read_csv(tables / f"{name}.csv", infer_schema=False)
        for r in printed.iter_rows(named=True):
            for column, text in r.items():
                cell = None if column in ("block", "row") else printed_cell(text)
                if cell is None:
                    continue
                length, group = column.rsplit(" ", 1)
                key = (table, r["block"], r["row"], length, group)
                out.append((key, cell[0], cell[1], f"{name} {column}"))
    return out


# Columns that are logically tied (cumulative windows, regained within any income, the
# population flags): the attacker knows which combinations of each group can occur, not
# how the groups combine (that is the data's secret); atoms are the possible persons.
ATTRIBUTE_GROUPS = (
    ("treated", "length_class"),
    ("in_income_tables", "in_table3", "income_row"),
    ("income_before", "no_income_before", "regained_applies"),
    tuple(f"{k}_{w}" for k in ("any_income", "regained") for w in WINDOWS),
    ("durable_any", "durable_regained"),
)


def possible_atoms(outcomes: pl.DataFrame, preds: dict[tuple, pl.Expr]) -> np.ndarray:
    """0/1 matrix, one row per distinct possible person (which predicates it satisfies):
    every combination of the observed value patterns of each attribute group."""
    people = outcomes.select(ATTRIBUTE_GROUPS[0]).unique()
    for group in ATTRIBUTE_GROUPS[1:]:
        people = people.join(outcomes.select(group).unique(), how="cross")
    bits = people.select(*(e.fill_null(False).alias(str(i)) for i, e in enumerate(preds.values())))
    matrix = bits.to_numpy().astype(bool)
    return np.unique(matrix[matrix.any(axis=1)], axis=0)


def income_family(outcomes: pl.DataFrame, tables: Path, threshold: int) -> Family:
    """The income family as the attacker reads it: atoms are the possible persons, each
    shown number an equality, each count the tables hide or imply a target; linked to the
    cohort through every outcome row's group and `income_row`."""
    preds = predicates() | {
        ("link", t, i): (pl.col("treated") == t) & (pl.col("income_row") == i)
        for t in (True, False)
        for i in (True, False)
    }
    keys = list(preds)
    bits = outcomes.select(
        *(e.fill_null(False).alias(str(i)) for i, e in enumerate(preds.values()))
    )
    truth = dict(zip(keys, bits.to_numpy().astype(bool).sum(axis=0).tolist(), strict=True))
    atoms = possible_atoms(outcomes, preds).astype(float)
    family = Family("income", len(atoms), truth, threshold)
    seen = observations(tables)
    for key, value, where in seen:
        assert key in preds, (key, where)
        family.see(where, key, atoms[:, keys.index(key)], value)
    for key, count, pct, _where in printed_cells(tables):  # "n (pct)": pct of the row's n
        if pct is not None and key[2] != "n":
            family.percent_of(atoms[:, keys.index((*key, "n"))], count, pct)
    shown = {key for key, _, _ in seen}
    family.targets = {
        key: atoms[:, j] for j, key in enumerate(keys) if key not in shown and key[0] != "link"
    }
    family.links = [
        Link(atoms[:, keys.index(("link", t, i))], cells_of(treated=t, income_row=i))
        for t in (True, False)
        for i in (True, False)
    ]
    return family


def attack(outcomes: pl.DataFrame, tables: Path, threshold: int) -> list[str]:
    """Every count of 1..threshold-1 the family shows, or lets be bounded to a range
    narrower than the threshold; one message each."""
    return income_family(outcomes, tables, threshold).findings()


OWNERSHIP = {"offentlig": "Offentlig", "privat": "Privat"}  # anything else prints "Okänd"


def _b3_people(cohort: pl.DataFrame, column: str, labels: dict[str, str] | None) -> pl.DataFrame:
    """Table 2/B3's persons (one row per person) with group, ownership and the block's label."""
    value = pl.col(column).cast(pl.String)
    return cohort.filter("person_row").select(
        pl.when(pl.col("treated"))
        .then(pl.lit("Insats"))
        .otherwise(pl.lit("Kontroll"))
        .alias("group"),
        pl.col("ownership").replace_strict(OWNERSHIP, default="Okänd").alias("ownership"),
        (value.replace_strict(labels, default=None) if labels else value).alias("category"),
    )


def b3_families(cohort: pl.DataFrame, tables: Path, threshold: int, blocks: dict) -> list[Family]:
    """Table 2 and B3 as the attacker reads them, one family per block (blocks share only
    their totals, which are shown or hidden alike): atoms are (category, group, ownership)
    of the person rows; linked to the cohort's person rows of each group."""
    long = pl.read_csv(tables / "table_b3_long.csv", infer_schema=False)
    short = pl.read_csv(tables / "table2_long.csv", infer_schema=False)
    printed = {
        name: pl.read_csv(tables / f"{name}.csv", infer_schema=False)
        for name in ("table_b3", "table2")
    }
    families = []
    for block, (column, labels) in blocks.items():
        people = _b3_people(cohort, column, labels)
        cats = long.filter(pl.col("block") == block)["category"].unique().to_list()
        possible = (
            people.select("group", "ownership")
            .unique()
            .join(people.select("category").unique(), how="cross")
        )
        keys = [
            (c, g, o)
            for c in cats
            for g in ("Insats", "Kontroll")
            for o in ("Offentlig", "Privat", "Okänd", "Totalt")
        ]

        def member(frame: pl.DataFrame, key: tuple, cats: list = cats) -> np.ndarray:
            c, g, o = key
            cat = (
                pl.col("category").is_in([x for x in cats if x != "Totalt"])
                if c == "Totalt"
                else pl.col("category") == c
            )
            own = pl.lit(True) if o == "Totalt" else pl.col("ownership") == o
            return (
                frame.select((cat & (pl.col("group") == g) & own).fill_null(False))
                .to_series()
                .to_numpy()
            )

        atoms = np.column_stack([member(possible, k) for k in keys]).astype(float)
        truth = {k: int(member(people, k).sum()) for k in keys}
        family = Family(f"B3 {block}", len(atoms), truth, threshold)

        def having(
            frame: pl.DataFrame, missing: bool = False, cats: list = cats, **want
        ) -> np.ndarray:
            """Rows with the values `want` (and, if `missing`, a category no row prints)."""
            test = ~pl.col("category").is_in(cats) if missing else pl.lit(True)
            for column, value in want.items():
                test = test & (pl.col(column) == value)
            return frame.select(test.fill_null(True)).to_series().to_numpy()

        # the persons without a printed category (missing): to be kept from being pinned
        for g in GROUPS:
            for o in (*OWNERSHIP.values(), "Okänd", "Totalt"):
                own = {} if o == "Totalt" else {"ownership": o}
                name = ("missing", g, o)
                truth[name] = int(having(people, True, group=g, **own).sum())
                family.targets[name] = having(possible, True, group=g, **own).astype(float)
        seen: list[tuple[tuple, float, str]] = []
        for frame, where in ((long, "table_b3_long"), (short, "table2_long")):
            part = frame.filter(pl.col("block") == block)
            totals = {
                (r["group"], r["ownership"]): value_of(r["n"])
                for r in part.filter(pl.col("category") == "Totalt").iter_rows(named=True)
            }
            for r in part.iter_rows(named=True):
                key = (r["category"], r["group"], r["ownership"])
                n, pct = value_of(r["n"]), value_of(r["percent"])
                total = totals.get((r["group"], r["ownership"]))
                if n is not None:
                    seen.append((key, n, where))
                elif pct is not None and total is not None:
                    seen.append((key, round(pct * total / 100), where + " percent"))
                if n is not None and pct and total is None:  # n and its percent: the total
                    key = ("Totalt", r["group"], r["ownership"])
                    seen.append((key, round(n * 100 / pct), where + " percent of the total"))
        for name, frame in printed.items():
            for r in frame.filter(pl.col("block") == block).iter_rows(named=True):
                for column_name, text in r.items():
                    cell = None if column_name in ("block", "category") else printed_cell(text)
                    if cell is None:
                        continue
                    (n, pct), (group, ownership) = cell, column_name.split(" ", 1)
                    seen.append(((r["category"], group, ownership), n, name))
                    if pct is not None and r["category"] != "Totalt":
                        total = ("Totalt", group, ownership)  # a percent bounds its total
                        family.percent_of(atoms[:, keys.index(total)], n, pct)
        for key, value, where in seen:
            family.see(where, key, atoms[:, keys.index(key)], value)
        shown = {key for key, _, _ in seen}
        family.targets |= {k: atoms[:, j] for j, k in enumerate(keys) if k not in shown}
        family.links = [
            Link(
                having(possible, group=g, ownership=o).astype(float),
                cells_of(treated=treated, person_row=True, ownership=o),
            )
            for g, treated in GROUPS.items()
            for o in (*OWNERSHIP.values(), "Okänd")
        ]
        families.append(family)
    return families


def attack_b3(cohort: pl.DataFrame, tables: Path, threshold: int, blocks: dict) -> list[str]:
    """Table 2 and B3, block by block: every count of 1..threshold-1 that is shown or
    confined to a range narrower than the threshold by the shown counts, shares and
    printed cells."""
    return [p for f in b3_families(cohort, tables, threshold, blocks) for p in f.findings()]


def b3_blocks() -> dict[str, tuple[str, dict[str, str] | None]]:
    """Table B3's blocks: the cohort column each counts and, for diagnoses, its labels."""
    from pipeline.core import config

    codes = config.compose([]).codes
    diagnosis = {str(g["key"]): str(g["label"]) for g in codes.diagnosis_groups}
    return {
        "Kön": ("sex", None),
        "Ålder": ("age_band", None),
        "Födelseland": ("birth_country_group", None),
        "Civiltillstånd": ("civil_status_group", None),
        "Utbildningsnivå": ("education_group", None),
        "Huvuddiagnos (MiDAS)": ("diagnosis_group", diagnosis),
        "Sysselsättningstyp": ("insured_type_group", None),
    }
