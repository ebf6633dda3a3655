"""The independent attacker on the §4.12 life table and the §3.5 register counts (issue
16): from the row-level data of a run, not from the gate's relation list.

Life table: a spell observed from day 0 leaves the table once, in one band, as a first
GC001 of one care level, as censored, or beyond the last day. The possible spells (atoms)
are every (band, way of leaving) and "beyond"; each published count is a sum of atoms:
spells at the start of a band are those leaving in it or later, a band's events those
leaving in it by a GC001 (of a level, or of any), its censored those leaving otherwise.
A band's spell-days are `width` x the spells leaving later plus 1..`width` days for each
spell leaving in it: two inequalities. A shown rate with its spell-days gives the events.
For each count of 1..threshold-1 that is hidden (or implied: a single atom) the attacker
solves two linear programs for its range; narrower than the threshold is a disclosure.

FK registrations (§5.3, `fk_registrations` and `fk_timing` together): a spell's group
and, per kind, none or the half-year of its first registration; the "meeting or plan"
row is a union of kinds, and a shown treated − control difference with one shown share
gives the other.

Figures 8-9 and the GC001 timing tables (`figure8`, `figure9`, `gc001_timing`,
`spell_length_by_care_level` together): a treated spell's care level, years, left
truncation, diagnosis, person row and whether its first GC001 came late.

Spell lengths by FK registration (`fk_spell_length`, §5.8): atoms are group, any
meeting or plan and censored, among sick leave issued in primary care.

Attrition: from the published numbers alone, no step's drop may be confined to
1..threshold-1 (counts only fall from step to step; spells = treated + control).

Register counts: GC001 contacts per region and year, in primary care and in all care
(`registered_vs_reported`), their sums over the survey years (`region_exclusion`) and the
2023 and 2024 counts again (`region_change_2023_2024`). Atoms: (region, year, primary
care or not).
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import polars as pl
from scipy.optimize import linprog

from pipeline.core import config
from pipeline.stages.claims import ClaimsConfig
from pipeline.stages.claims.life_table import spell_exits
from tests.helpers import value_of
from tests.reference.attack.lp import Family, Link, cells_of


def attack_life_table(outputs: Path, tables: Path, threshold: int) -> list[str]:
    """Every count of the published GC001 life table that is shown below the threshold or
    confined to a narrower range by what the table shows."""
    conf = ClaimsConfig.from_config(config.compose([]))
    exits = spell_exits(
        pl.read_parquet(outputs / "cohort_at_risk.parquet"), conf.window_start, conf.window_end
    )
    n_bands = -(-conf.max_day // conf.band_days)
    width = [min(conf.band_days, conf.max_day - b * conf.band_days) for b in range(n_bands)]
    people = exits.select(
        pl.when(pl.col("exit_day") >= conf.max_day)
        .then(pl.lit(n_bands))
        .otherwise(pl.col("exit_day") // conf.band_days)
        .alias("band"),
        pl.when(pl.col("event")).then(pl.col("care_level")).otherwise(pl.lit("censored")),
    ).rename({"care_level": "how"})
    levels = sorted(people.filter(pl.col("how") != "censored")["how"].unique().to_list())
    atoms = [(b, how) for b in range(n_bands) for how in (*levels, "censored")]
    atoms.append((n_bands, "beyond"))
    observed = people.with_columns(
        pl.when(pl.col("band") == n_bands).then(pl.lit("beyond")).otherwise("how").alias("how")
    )
    counts = dict.fromkeys(atoms, 0)
    for band, how, n in observed.group_by("band", "how").len().iter_rows():
        counts[(band, how)] = n

    def indicator(test) -> np.ndarray:
        return np.array([1.0 if test(b, how) else 0.0 for b, how in atoms])

    cells = {}
    for b in range(n_bands):
        cells[("n_at_start", b)] = indicator(lambda x, _h, b=b: x >= b)
        cells[("censored", b)] = indicator(lambda x, h, b=b: x == b and h == "censored")
        cells[("events", b, "Alla")] = indicator(lambda x, h, b=b: x == b and h in levels)
        for level in levels:
            cells[("events", b, level)] = indicator(lambda x, h, b=b, lv=level: x == b and h == lv)
    x_true = np.array([counts[a] for a in atoms], dtype=float)
    truth = {name: round(float(row @ x_true)) for name, row in cells.items()}
    truth |= {("atom", *a): counts[a] for a in atoms}
    targets = cells | {("atom", *a): indicator(lambda x, h, a=a: (x, h) == a) for a in atoms}

    published = pl.read_csv(tables / "gc001_life_table.csv", infer_schema=False)
    shown_counts = Family("life table", len(atoms), truth, threshold, targets=targets)
    for r in published.iter_rows(named=True):
        b, level = int(r["band"]), r["care_level"]
        shown = {
            ("n_at_start", b): value_of(r["n_at_start"]),
            ("censored", b): value_of(r["censored"]),
            ("events", b, level): value_of(r["events"]),
        }
        days, rate = value_of(r["spell_days"]), value_of(r["rate_per_1000"])
        if days is not None and rate is not None and shown[("events", b, level)] is None:
            shown[("events", b, level)] = round(rate * days / 1000)
        for name, value in shown.items():
            if value is not None:
                shown_counts.see("gc001_life_table", name, cells[name], value)
        if days is not None and level == "Alla":
            later = indicator(lambda x, _h, b=b: x > b) * width[b]
            here = indicator(lambda x, _h, b=b: x == b or (b == n_bands - 1 and x == n_bands))
            if b == n_bands - 1:  # the last band: spells beyond it count its whole width
                later = indicator(lambda x, _h: x == n_bands) * width[b]
                here = indicator(lambda x, _h, b=b: x == b)
            # at least one day, at most the band's width, for each spell leaving in the band
            shown_counts.lower.append((-(later + here), -days))
            shown_counts.lower.append((later + width[b] * here, days))
    return shown_counts.findings()


def attack_register_counts(staged: Path, tables: Path, threshold: int) -> list[str]:
    """Every GC001 register count of §3.5 shown below the threshold, or confined to a
    narrower range by registered_vs_reported, region_exclusion and the 2023-2024 change."""
    cfg = config.compose([])
    codes = [str(c).upper() for c in cfg.exposure.codes]
    has_code = pl.col("kva").fill_null("").str.split(" ").list.eval(pl.element().is_in(codes))
    contacts = pl.read_parquet(staged / "vardkontakter.parquet").filter(
        has_code.list.any() & pl.col("datum").dt.year().is_between(2019, 2024)
    )
    people = contacts.select(
        pl.col("region").cast(pl.String),
        pl.col("datum").dt.year().alias("year"),
        (pl.col("vardniva") == "primarvard").alias("primary"),  # the contract's primary care
    )
    vs = pl.read_csv(tables / "registered_vs_reported.csv", infer_schema=False)
    regions = sorted(set(vs["region"].to_list()))
    years = sorted({int(y) for y in vs["year"].to_list()})
    atoms = [(r, y, p) for r in regions for y in years for p in (True, False)]
    counts = dict.fromkeys(atoms, 0)
    for region, year, is_primary, n in (
        people.group_by("region", "year", "primary").len().iter_rows()
    ):
        if (region, year, is_primary) in counts:
            counts[(region, year, is_primary)] = n

    def indicator(test) -> np.ndarray:
        return np.array([1.0 if test(*a) else 0.0 for a in atoms])

    cells = {}
    for region in regions:
        for year in years:
            cells[("registered", region, year)] = indicator(
                lambda r, y, _p, a=region, b=year: (r, y) == (a, b)
            )
            cells[("primary", region, year)] = indicator(
                lambda r, y, p, a=region, b=year: (r, y) == (a, b) and p
            )
    x_true = np.array([counts[a] for a in atoms], dtype=float)
    truth = {name: round(float(row @ x_true)) for name, row in cells.items()}
    truth |= {("atom", *a): counts[a] for a in atoms}
    targets = cells | {("atom", *a): indicator(lambda *x, a=a: x == a) for a in atoms}
    shown = Family("register counts", len(atoms), truth, threshold, targets=targets)

    def see(name, value, where):
        shown.see(where, name, cells[name] if name in cells else name_row[name], value)

    name_row: dict = {}
    survey_years: dict[str, set[int]] = {}
    for r in vs.iter_rows(named=True):
        key = (r["region"], int(r["year"]))
        reported = value_of(r["antal_insatser"])
        if reported is not None:
            survey_years.setdefault(r["region"], set()).add(key[1])
        value = value_of(r["registered"])
        share = value_of(r["register_share"])
        if value is None and share is not None and reported is not None:
            value = round(share * reported)  # the share and the survey give it back
        if value is not None:
            see(("registered", *key), value, "registered_vs_reported")
        value = value_of(r["registered_primary_care"])
        if value is not None:
            see(("primary", *key), value, "registered_vs_reported")
    rule = pl.read_csv(tables / "region_exclusion.csv", infer_schema=False)
    for r in rule.iter_rows(named=True):
        if r["region"] not in regions:
            continue
        surveyed = survey_years.get(r["region"], set())
        for column, years_in, primary_only in (
            ("registered_primary_care", set(years), True),
            ("registered_survey_years", surveyed, False),
        ):
            value = value_of(r[column])
            share, reported = (
                value_of(r["register_share"]),
                value_of(r["reported_survey_years"]),
            )
            if (
                column == "registered_survey_years"
                and value is None
                and None
                not in (
                    share,
                    reported,
                )
            ):
                value = round(share * reported)
            if value is None:
                continue
            name = ("sum", column, r["region"])
            row = indicator(
                lambda rg, y, p, a=r["region"], ys=years_in, po=primary_only: (
                    rg == a and y in ys and (p or not po)
                )
            )
            truth[name] = round(float(row @ x_true))
            name_row[name] = row
            see(name, value, "region_exclusion")
    change = pl.read_csv(tables / "region_change_2023_2024.csv", infer_schema=False)
    for r in change.iter_rows(named=True):
        for year in (2023, 2024):
            value = value_of(r[f"registered_{year}"])
            if value is not None and r["region"] in regions:
                see(("registered", r["region"], year), value, "region_change_2023_2024")
    return shown.findings()


def fk_registrations_family(outputs: Path, staged: Path, tables: Path, threshold: int) -> Family:
    """§5.3: every count of `fk_registrations` and `fk_timing` shown below the threshold,
    or confined to a narrower range by the shown counts, shares and treated − control
    differences. Atoms: a spell's group and, per registration kind, none or the half-year
    of its first one (the "meeting or plan" row is a union of kinds, not a sum)."""
    cfg = config.compose([])
    kinds = [str(k) for k in cfg.fk.kinds]
    any_kinds = set(map(str, cfg.fk.any_fk))
    spells = pl.read_parquet(outputs / "cohort.parquet").filter("person_row")
    events = pl.read_parquet(staged / "fk_handelser.parquet")
    # per spell and kind: the half-year band of its first registration of that kind
    edges = [0, 183, 365, 548]
    inside = (
        spells.select("spell_id", "lopnr", "start", "end")
        .join(events, on="lopnr")
        .filter(pl.col("datum").is_between(pl.col("start"), pl.col("end")))
        .with_columns((pl.col("datum") - pl.col("start")).dt.total_days().alias("day"))
        .group_by("spell_id", "handelse")
        .agg(pl.col("day").min())
    )
    first = {(sid, kind): day for sid, kind, day in inside.iter_rows()}
    groups = {"Insats": True, "Kontroll": False}
    states = (None, *range(len(edges)))  # no registration, or its band
    atoms = [(g, combo) for g in groups for combo in itertools.product(states, repeat=len(kinds))]
    counts = dict.fromkeys(atoms, 0)
    for spell_id, treated in spells.select("spell_id", "treated").iter_rows():
        combo = tuple(
            None
            if (spell_id, kind) not in first
            else max(i for i, e in enumerate(edges) if first[(spell_id, kind)] >= e)
            for kind in kinds
        )
        counts[("Insats" if treated else "Kontroll", combo)] += 1

    def has(kind: str, combo: tuple) -> bool:
        if kind == "any_fk":
            return any(combo[i] is not None for i, k in enumerate(kinds) if k in any_kinds)
        return combo[kinds.index(kind)] is not None

    cells = {}
    for group in groups:
        cells[("n", group)] = np.array([1.0 if g == group else 0.0 for g, _ in atoms])
        for kind in [*kinds, "any_fk"]:
            cells[(kind, group)] = np.array(
                [1.0 if g == group and has(kind, c) else 0.0 for g, c in atoms]
            )
        for i, kind in enumerate(kinds):  # fk_timing: spells by band of the first one
            for band in range(len(edges)):
                cells[("band", kind, group, band)] = np.array(
                    [1.0 if g == group and c[i] == band else 0.0 for g, c in atoms]
                )
    x_true = np.array([counts[a] for a in atoms], dtype=float)
    truth = {name: round(float(row @ x_true)) for name, row in cells.items()}
    targets = dict(cells)
    for name, row in list(cells.items()):  # n - count: the spells without the registration
        if len(name) == 2 and name[0] != "n":
            targets[("without", *name)] = cells[("n", name[1])] - row
            truth[("without", *name)] = truth[("n", name[1])] - truth[name]
    published = pl.read_csv(tables / "fk_registrations.csv", infer_schema=False)
    shown = Family("FK registrations", len(atoms), truth, threshold, targets=targets)
    shown.links = [  # the person rows of each group
        Link(cells[("n", g)], cells_of(treated=treated, person_row=True))
        for g, treated in groups.items()
    ]
    by_kind: dict[str, dict[str, dict]] = {}
    for r in published.iter_rows(named=True):
        by_kind.setdefault(r["registration"], {})[r["group"]] = r
    for kind, rows in by_kind.items():
        seen: dict[tuple, float] = {}
        for group, r in rows.items():
            n, count, pct = (
                value_of(r["n"]),
                value_of(r["count"]),
                value_of(r["percent"]),
            )
            if n is not None:
                seen[("n", group)] = n
            if count is not None:
                seen[(kind, group)] = count
            elif pct is not None and n is not None:
                seen[(kind, group)] = round(pct * n / 100)
        diff = value_of(rows["Insats"]["diff_pp"])
        pct = {g: value_of(r["percent"]) for g, r in rows.items()}
        n = {g: seen.get(("n", g)) for g in rows}
        for this, other in (("Insats", "Kontroll"), ("Kontroll", "Insats")):
            sign = 1 if this == "Insats" else -1
            if (kind, this) not in seen and None not in (diff, pct[other], n[this]):
                seen[(kind, this)] = round((pct[other] + sign * diff) * n[this] / 100)
        for name, value in seen.items():
            shown.see("fk_registrations", name, cells[name], value)
    timing = pl.read_csv(tables / "fk_timing.csv", infer_schema=False)
    shares = [c for c in timing.columns if c.startswith("share_")]
    for r in timing.iter_rows(named=True):
        kind, group, n = r["handelse"], r["group"], value_of(r["n"])
        if kind not in kinds or n is None:
            continue
        seen = {(kind, group): n}
        for band, column in enumerate(shares):
            share = value_of(r[column])
            if share is not None:
                seen[("band", kind, group, band)] = round(share * n)
        for name, value in seen.items():
            shown.see("fk_timing", name, cells[name], value)
    return shown


def attack_fk_registrations(outputs: Path, staged: Path, tables: Path, threshold: int) -> list[str]:
    """§5.3: every count of `fk_registrations` and `fk_timing` shown below the threshold,
    or confined to a narrower range by the shown counts, shares and differences."""
    return fk_registrations_family(outputs, staged, tables, threshold).findings()


def gc001_timing_family(outputs: Path, tables: Path, threshold: int) -> Family:
    """Figures 8-9 and the GC001 timing tables together: every count shown below the
    threshold, or confined to a narrower range. Atoms: a treated spell's care-level
    group, year of first GC001, start year, left truncation, diagnosis group, whether it
    is a person row, and whether its first GC001 came after the late day; a shown share
    after the late day with its n gives the count of late spells."""
    cfg = config.compose([])
    late = int(cfg.describe.late_gc001_day)
    labels = {str(g["key"]): str(g["label"]) for g in cfg.codes.diagnosis_groups}
    treated = pl.read_parquet(outputs / "cohort.parquet").filter("treated")
    keys = ["care_level_group", "year", "start_year", "left_truncated", "diagnosis_group",
            "person_row", "late"]  # fmt: skip
    people = treated.select(
        pl.col("care_level_group"),
        pl.col("first_gc001").dt.year().alias("year"),
        pl.col("start").dt.year().alias("start_year"),
        "left_truncated",
        "diagnosis_group",
        "person_row",
        (pl.col("day_first_gc001") > late).alias("late"),
    )
    counted = people.group_by(keys).len()
    # the attacker does not know which combinations occur: it allows every combination of
    # the values seen per attribute (a superset of the possible spells)
    values = [people[k].unique().to_list() for k in keys]
    atoms = list(itertools.product(*values))
    index = {a: i for i, a in enumerate(atoms)}
    x_true = np.zeros(len(atoms))
    for *key, n in counted.iter_rows():
        x_true[index[tuple(key)]] = n
    position = {k: i for i, k in enumerate(keys)}

    def indicator(**want) -> np.ndarray:
        def holds(atom: tuple) -> bool:
            return all(atom[position[k]] == v for k, v in want.items())

        return np.array([1.0 if holds(a) else 0.0 for a in atoms])

    cells, truth = {}, {}
    shown = Family("GC001 timing", len(atoms), truth, threshold)
    shown.links = [  # every treated spell, person row or not
        Link(indicator(person_row=p), cells_of(treated=True, person_row=p)) for p in (True, False)
    ]

    def see(name: tuple, row: np.ndarray, value: float | None, where: str) -> None:
        if value is not None:
            cells[name], truth[name] = row, round(float(row @ x_true))
            shown.see(where, name, row, value)

    def rows_of(file: str) -> list[dict]:
        return pl.read_csv(tables / file, infer_schema=False).to_dicts()

    def n_and_late(where: str, name: tuple, base: dict, r: dict) -> None:
        n = value_of(r["n"])
        see((*name, "n"), indicator(**base), n, where)
        share = value_of(r["share_after_late_day"])
        if n is not None and share is not None:
            see((*name, "late"), indicator(**base, late=True), round(share * n), where)

    years = {"main": "year", "spell_start_year": "start_year", "without_left_truncated": "year"}
    for r in rows_of("figure8.csv"):
        base = {"care_level_group": r["care_level_group"], years[r["variant"]]: int(r["year"])}
        if r["variant"] == "without_left_truncated":
            base["left_truncated"] = False
        n_and_late("figure8", (r["variant"], r["care_level_group"], r["year"]), base, r)
    back = {label: key for key, label in labels.items()}
    for r in rows_of("figure9.csv"):
        base = {
            "care_level_group": "primary_care",
            "year": int(r["year"]),
            "diagnosis_group": back[r["diagnosis"]],
        }
        n_and_late("figure9", (r["diagnosis"], r["year"]), base, r)
    for r in rows_of("gc001_timing.csv"):
        base = {} if r["unit"] == "spells" else {"person_row": True}
        n_and_late("gc001_timing", (r["unit"],), base, r)
    for r in rows_of("spell_length_by_care_level.csv"):
        if r["group"].startswith("Insats, "):
            level = r["group"].removeprefix("Insats, ")
            see(
                (r["group"], "n"),
                indicator(care_level_group=level),
                value_of(r["n"]),
                "lengths",
            )
    # targets: every atom group the tables speak of, and the late / not late split of each
    targets = dict(cells)
    for name, row in list(cells.items()):
        if name[-1] == "late":
            total = cells[(*name[:-1], "n")]
            targets[(*name[:-1], "not late")] = total - row
            truth[(*name[:-1], "not late")] = truth[(*name[:-1], "n")] - truth[name]
    shown.targets = targets
    return shown


def attack_gc001_timing(outputs: Path, tables: Path, threshold: int) -> list[str]:
    """Figures 8-9 and the GC001 timing tables: every count shown below the threshold, or
    confined to a narrower range by what they show together."""
    return gc001_timing_family(outputs, tables, threshold).findings()


def attack_prior_days(outputs: Path, staged: Path, tables: Path, threshold: int) -> list[str]:
    """`prior_sick_days`: every count of persons with or without sick days before the
    anchor (a shown share of a group with its n) below the threshold. Atoms per anchor
    and group: any sick days or none. The index anchors' control share is a mean over
    sets, not a count: only the treated side is a count there."""
    from pipeline.stages.claims import ClaimsConfig, member_days

    conf = ClaimsConfig.from_config(config.compose([]))
    days = member_days(
        pl.read_parquet(outputs / "cohort.parquet"),
        pl.read_parquet(outputs / "cohort_at_risk.parquet"),
        pl.read_parquet(outputs / "riskset.parquet"),
        staged / "sjukpenning.parquet",
        conf.prior_window_days,
    )
    published = pl.read_csv(tables / "prior_sick_days.csv", infer_schema=False)
    problems = []
    for r in published.filter(pl.col("statistic") == "share_any").iter_rows(named=True):
        frame = days[r["anchor"]]
        sides = [("treated", True)] + ([("control", False)] if r["anchor"] == "spell_start" else [])
        for side, treated in sides:
            group = frame.filter(pl.col("treated") == treated)
            n, share = value_of(r[f"n_{side}"]), value_of(r[side])
            if n is None:
                continue
            assert n == group.height, (r["anchor"], side, n, group.height)
            if share is None:
                continue
            with_days = int((group["net_days"] > 0).sum())
            assert round(share * n / 100) == with_days, (r["anchor"], side)
            for what, count in (("with", with_days), ("without", group.height - with_days)):
                if 0 < count < threshold:
                    problems.append(f"prior_sick_days {r['anchor']} {side}: {count} {what} days")
    return problems


def fk_spell_length_family(outputs: Path, staged: Path, tables: Path, threshold: int) -> Family:
    """`fk_spell_length` (§5.8): every count of spells shown below the threshold, or
    confined to a narrower range. Atoms: group, any FK meeting or plan, censored; among
    sick leave issued in primary care (treated: first GC001 there; controls: a
    primary-care contact from 14 days before to 30 days after the start)."""
    cfg = config.compose([])
    primary = str(cfg.codes.primary_care)
    before, after = int(cfg.fk.primary_care_days_before), int(cfg.fk.primary_care_days_after)
    any_kinds = [str(k) for k in cfg.fk.any_fk]
    cohort = pl.read_parquet(outputs / "cohort.parquet")
    contacts = pl.read_parquet(staged / "vardkontakter.parquet").filter(
        pl.col("vardniva") == primary
    )
    near = (
        cohort.filter(~pl.col("treated"))
        .select("spell_id", "lopnr", "start")
        .join(contacts.select("lopnr", "datum"), on="lopnr")
        .filter(
            pl.col("datum").is_between(
                pl.col("start") - pl.duration(days=before),
                pl.col("start") + pl.duration(days=after),
            )
        )["spell_id"]
        .unique()
    )
    events = pl.read_parquet(staged / "fk_handelser.parquet").filter(
        pl.col("handelse").is_in(any_kinds)
    )
    with_fk = (
        cohort.select("spell_id", "lopnr", "start", "end")
        .join(events, on="lopnr")
        .filter(pl.col("datum").is_between(pl.col("start"), pl.col("end")))["spell_id"]
        .unique()
    )
    rows = cohort.filter(
        pl.when(pl.col("treated"))
        .then(pl.col("vardniva_first") == primary)
        .otherwise(pl.col("spell_id").is_in(near.implode()))
    ).select(
        pl.when(pl.col("treated")).then(pl.lit("Insats")).otherwise(pl.lit("Kontroll")),
        pl.col("spell_id").is_in(with_fk.implode()).alias("any_fk"),
        "censored",
    )
    atoms = list(itertools.product(("Insats", "Kontroll"), (True, False), (True, False)))
    found = {tuple(r[:3]): r[3] for r in rows.group_by(rows.columns).len().iter_rows()}
    x_true = np.array([found.get(a, 0) for a in atoms], dtype=float)
    cells, truth = {}, {}
    shown = Family("fk_spell_length", len(atoms), truth, threshold, targets=cells)
    shown.links = [  # part of each group's cohort spells
        Link(np.array([1.0 if a[0] == g else 0.0 for a in atoms]), cells_of(treated=t), exact=False)
        for g, t in (("Insats", True), ("Kontroll", False))
    ]
    for r in pl.read_csv(tables / "fk_spell_length.csv", infer_schema=False).iter_rows(named=True):
        key = (r["group"], r["any_fk"] == "true")
        for what, column in (("n", "n"), ("censored", "n_censored")):
            row = np.array([1.0 if a[:2] == key and (what == "n" or a[2]) else 0.0 for a in atoms])
            name = (*key, what)
            cells[name], truth[name] = row, round(float(row @ x_true))
            value = value_of(r[column])
            if value is not None:
                shown.see("fk_spell_length", name, row, value)
        name = (*key, "not censored")
        cells[name] = cells[(*key, "n")] - cells[(*key, "censored")]
        truth[name] = truth[(*key, "n")] - truth[(*key, "censored")]
    return shown


def attack_fk_spell_length(outputs: Path, staged: Path, tables: Path, threshold: int) -> list[str]:
    """`fk_spell_length` (§5.8): every count of spells shown below the threshold, or
    confined to a narrower range."""
    return fk_spell_length_family(outputs, staged, tables, threshold).findings()


def attack_attrition(tables: Path, threshold: int) -> list[str]:
    """The attrition flow: every step's drop (the difference of a count between two
    consecutive steps) that is shown, or that the shown counts confine, as 1..threshold-1.
    Only the published numbers are used: each count can only fall from one step to the
    next, a step's spells are its treated plus its control spells, and the `person_row`
    step keeps every person with one spell. Its spell drop (the extra spells of persons with
    several, shown by any step as spells minus persons) counts no persons: not a target."""
    frame = pl.read_csv(tables / "attrition.csv", infer_schema=False)
    columns = [c for c in frame.columns if c.startswith("n_") and c != "n_rows"]
    steps = [r for r in frame.iter_rows(named=True) if r["n_spells"] not in (None, "")]
    variables = {(i, c): k for k, (i, c) in enumerate(
        (i, c) for i, r in enumerate(steps) for c in columns if r[c] == ".."
    )}  # fmt: skip
    size = len(variables)

    def term(i: int, column: str) -> tuple[np.ndarray, float]:
        """The cell as (coefficients over the hidden cells, constant)."""
        row = np.zeros(size)
        if (i, column) in variables:
            row[variables[(i, column)]] = 1.0
            return row, 0.0
        return row, float(steps[i][column])

    a_ub, b_ub, a_eq, b_eq = [], [], [], []
    unit = [r["step"] for r in steps].index("person_row")
    for i in range(len(steps) - 1):
        for column in columns:  # later <= earlier
            (later, cl), (earlier, ce) = term(i + 1, column), term(i, column)
            a_ub.append(later - earlier)
            b_ub.append(ce - cl)
    for side in ("", "_treated", "_control"):  # person_row: every person, one spell each
        for (a, ca), (b, cb) in (
            (term(unit, f"n_persons{side}"), term(unit - 1, f"n_persons{side}")),
            (term(unit, f"n_spells{side}"), term(unit, f"n_persons{side}")),
        ):
            a_eq.append(a - b)
            b_eq.append(cb - ca)
    for i in range(len(steps)):  # spells = treated + control
        (total, ct), (t, c1), (c, c2) = (
            term(i, "n_spells"),
            term(i, "n_spells_treated"),
            term(i, "n_spells_control"),
        )
        a_eq.append(t + c - total)
        b_eq.append(ct - c1 - c2)
    problems = []
    for i in range(len(steps) - 1):
        for column in columns:
            if i + 1 == unit and column.startswith("n_spells"):
                continue  # the extra spells of persons with several: not a count of persons
            (later, cl), (earlier, ce) = term(i + 1, column), term(i, column)
            goal, constant = earlier - later, ce - cl  # the drop
            if not goal.any():
                low = high = constant
            else:
                kw = dict(A_ub=np.vstack(a_ub), b_ub=b_ub, A_eq=np.vstack(a_eq), b_eq=b_eq,
                          bounds=(0, None), method="highs")  # fmt: skip
                lo, hi = linprog(goal, **kw), linprog(-goal, **kw)
                assert lo.status == 0, lo.message
                low = lo.fun + constant
                high = np.inf if hi.status == 3 else -hi.fun + constant
            if 0 < high < threshold:
                step = steps[i + 1]["step"]
                problems.append(f"attrition {step} {column}: the drop lies in [{low:g}, {high:g}]")
    return problems


def attrition_family(tables: Path, results: Path, threshold: int) -> Family:
    """The published attrition flow as the attacker reads it: its hidden cells are the
    unknowns (true values from the flow before the gate, in `results`); each count only
    falls from step to step, a step's spells are its treated plus its control spells;
    targets are the hidden cells and every step's drop of persons (`attack_attrition` says
    which). Linked to the cohort: the step before `person_row` counts every cohort spell of
    a group, `person_row` its person rows."""
    frame = pl.read_csv(tables / "attrition.csv", infer_schema=False)
    full = pl.read_csv(results / "attrition.csv", infer_schema=False)
    assert frame["step"].to_list() == full["step"].to_list()
    columns = [c for c in frame.columns if c.startswith("n_") and c != "n_rows"]
    keep = [i for i, r in enumerate(frame.iter_rows(named=True)) if r["n_spells"] not in (None, "")]
    steps = [frame.row(i, named=True) for i in keep]
    true = [full.row(i, named=True) for i in keep]
    hidden = [(i, c) for i, r in enumerate(steps) for c in columns if r[c] == ".."]
    variables = {cell: k for k, cell in enumerate(hidden)}

    def term(i: int, column: str) -> tuple[np.ndarray, float]:
        """The cell as (coefficients over the hidden cells, constant)."""
        row = np.zeros(len(variables))
        if (i, column) in variables:
            row[variables[(i, column)]] = 1.0
            return row, 0.0
        return row, float(steps[i][column])

    truth: dict = {}
    family = Family("attrition", len(variables), truth, threshold)
    for i, column in hidden:
        truth[(steps[i]["step"], column)] = int(true[i][column])
        family.targets[(steps[i]["step"], column)] = term(i, column)[0]
    unit = [r["step"] for r in steps].index("person_row")
    for side in ("", "_treated", "_control"):  # person_row: every person, one spell each
        for (a, ca), (b, cb) in (
            (term(unit, f"n_persons{side}"), term(unit - 1, f"n_persons{side}")),
            (term(unit, f"n_spells{side}"), term(unit, f"n_persons{side}")),
        ):
            family.equal.append((a - b, cb - ca))
    for i in range(len(steps)):
        (total, ct), (t, c1), (c, c2) = (
            term(i, "n_spells"),
            term(i, "n_spells_treated"),
            term(i, "n_spells_control"),
        )
        family.equal.append((t + c - total, ct - c1 - c2))
        if i == 0:
            continue
        for column in columns:
            (later, cl), (earlier, ce) = term(i, column), term(i - 1, column)
            family.lower.append((earlier - later, cl - ce))  # later <= earlier
            if i == unit and column.startswith("n_spells"):
                continue  # extra spells of persons with several: no count of persons
            name = ("drop", steps[i]["step"], column)
            truth[name] = int(true[i - 1][column]) - int(true[i][column])
            family.targets[name] = (earlier - later, ce - cl)
    unit = [r["step"] for r in steps].index("person_row")
    for i, person_row in ((unit - 1, None), (unit, True)):
        for column, treated in (("n_spells_treated", True), ("n_spells_control", False)):
            row, constant = term(i, column)
            family.links.append(Link(row, cells_of(treated, person_row), constant=constant))
    for problem in attack_attrition(tables, threshold):
        family.problems.append(problem)
    return family
