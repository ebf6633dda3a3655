"""The publishable files and what the gate knows of each (`spec.TableSpec`), in the order
they are published: a table that shares cells with another comes after it. A file a
stage writes under `outputs/results/` without a spec here is refused by `publish`.

Over 400 lines: the one registry of every publishable file, an entry each; split over
modules it would no longer be the single list an output checker reads.
"""

from __future__ import annotations

from pipeline.report.income_tables import ANY_INCOME, HAD_INCOME, NO_INCOME, REGAINED, TABLE3
from pipeline.report.labels import AGE_BLOCK, TOTAL
from pipeline.report.publication.particular import (
    GROUP_KEYS,
    attrition_link,
    attrition_relations,
    b6_blocks_of_everyone,
    b6_total_link,
    blocks_of_everyone,
    deciles_add_up,
    design_deciles,
    figure_link,
    figure_ref_link,
    life_table_cells,
    person_rows_link,
    printed_block_total,
    printed_blocks_of_everyone,
    printed_share_of_block_total,
    prior_derived_cells,
    prior_share_cells,
    region_smd_cells,
    region_years,
    same_model,
    share_of_block_total,
)
from pipeline.report.publication.relations import (
    chained,
    column_link,
    combine,
    group_total,
    inside,
    layout_link,
    margin,
    nested,
    row_sum,
    row_total_of_the_rest,
    same_as_total,
    steps,
)
from pipeline.report.publication.spec import ALL_BUT_KEYS, Follow, Link, TableSpec

CI = ("ci_low", "ci_high")
B3_KEYS = ("block", "category", "group", "ownership")
BLOCK_ROW, GROUP_COLUMN = B3_KEYS[:2], B3_KEYS[2:]  # a printed row; a printed column header
ANY, BACK = ANY_INCOME, REGAINED  # B4's blocks: any income; the previous level regained
MODEL_ESTIMATES = ("n", "odds_ratio", "or_ci_low", "or_ci_high", "ame_pp", "ame_ci_low")
MODEL_ESTIMATES += ("ame_ci_high", "p_value", "stars")
WINDOWS = ("row", "n", "<12 mån", "<6 mån", "<3 mån")  # cumulative: each inside the one before
ROW = ("table", "block", "row", "length_class")  # a cell of the income tables, both groups
P_VALUES = ("p_unadjusted", "p_adjusted", "p_value", "stars")  # treated against controls
B6_ROW, B6_KEYS = ("block", "row", "income"), ("block", "category", "income")  # a B6 share


def _share(columns: tuple[str, ...], n: str = "n", scale: float = 1) -> dict:
    return {c: (n, scale) for c in columns}


ATTRITION_COUNTS = (
    "n_spells",
    "n_persons",
    "n_spells_treated",
    "n_persons_treated",
    "n_spells_control",
    "n_persons_control",
)
LONG_TABLE2 = dict(
    keys=("block", "category", "group", "ownership"),
    counts=("n",),
    derived={"percent": ("n",)},
    derived_cells=share_of_block_total,
    flag="suppressed",
)
TIMING_UNITS = {
    ("spells",): ("cohort", "n_spells_treated"),
    ("person_rows",): ("person_row", "n_spells_treated"),
}
FK_PAIR = ("diff_pp", "diff_ci_low", "diff_ci_high", "p_value")
FK_SHARES = ("share_0–182", "share_183–364", "share_365–547", "share_548–")

SPECS: tuple[TableSpec, ...] = (
    TableSpec(
        "attrition.csv",
        "attrition flow: rows, spells and persons after each population step (§3.4)",
        keys=("step",),
        counts=ATTRITION_COUNTS,
        relations=combine(
            attrition_relations(ATTRITION_COUNTS),
            row_sum("n_spells", ("n_spells_treated", "n_spells_control")),
        ),
        source="outputs",
    ),
    TableSpec(
        "exposure_outside_spells.csv",
        "GC001 contacts and persons outside any sick-leave spell, by year and care level",
        keys=("year", "vardniva"),
        counts=(
            "n_contacts",
            "n_inside_spell",
            "n_outside_spell",
            "n_persons",
            "n_persons_only_outside",
        ),
        complements=(("n_persons_only_outside", "n_persons"),),
        relations=row_sum("n_contacts", ("n_inside_spell", "n_outside_spell")),
        source="outputs",
    ),
    TableSpec(
        "table_b3_long.csv",
        "Table B3: persons by background and provider ownership (tidy)",
        relations=combine(
            margin(("n",), ("block", "group", "ownership"), "category", "Totalt"),
            margin(("n",), ("block", "category", "group"), "ownership", "Totalt"),
            blocks_of_everyone,
        ),
        # each group's persons are the attrition flow's person rows
        links=(
            Link("attrition.csv", person_rows_link("n", B3_KEYS, (AGE_BLOCK, TOTAL), (TOTAL,))),
        ),
        **LONG_TABLE2,
    ),
    TableSpec(
        "table2_long.csv",
        "Table 2: persons by background, treated and controls (tidy)",
        relations=combine(
            margin(("n",), ("block", "group", "ownership"), "category", "Totalt"),
            blocks_of_everyone,
        ),
        # Table 2 is B3's ownership "Totalt" column: the same cells
        links=(Link("table_b3_long.csv", column_link("n", "n", B3_KEYS, B3_KEYS, {})),),
        **LONG_TABLE2,
    ),
    *(
        TableSpec(
            name,
            what,
            keys=("block", "category"),
            text=ALL_BUT_KEYS,
            # a percent is of its block's total in its column
            follows=(Follow(long, printed_block_total),),
            links=(
                Link(long, layout_link(BLOCK_ROW, BLOCK_ROW, GROUP_COLUMN, "n", split="first")),
            ),
        )
        for name, what, long in (
            ("table2.csv", "Table 2 as printed: n (percent) by background", "table2_long.csv"),
            (
                "table_b3.csv",
                "Table B3 as printed: n (percent) by background and ownership",
                "table_b3_long.csv",
            ),
        )
    ),
    TableSpec(
        "table_b3_age.csv",
        "Table B3: mean and median age by group and ownership",
        keys=("group", "ownership"),
        counts=("n",),
        stats={"mean_age": "n", "median_age": "n"},
        links=(
            Link(
                "table_b3_long.csv",
                column_link(
                    "n", "n", GROUP_COLUMN, GROUP_COLUMN, {"block": AGE_BLOCK, "category": TOTAL}
                ),
            ),
        ),
        flag="suppressed",
    ),
    TableSpec(
        "ownership_split.csv",
        "treated persons by provider ownership",
        keys=("group", "ownership"),
        counts=("n",),
        links=(
            Link(
                "table_b3_long.csv",
                column_link(
                    "n",
                    "n",
                    ("group", "ownership"),
                    ("group", "ownership"),
                    {"block": "Kön", "category": "Totalt"},
                ),
            ),
        ),
        flag="suppressed",
    ),
    *(
        TableSpec(
            name,
            what,
            keys=keys,
            counts=("n",),
            stats={"mean_days": "n", "median_days": "n"},
            implied=_share(("share_after_late_day",)),
            complements=(("share_after_late_day", "n"),),
            # a mean gives the days' sum, which with the median bounds a hidden share's
            # count from below: the mean goes with the share (the median alone only caps it)
            derived={"mean_days": ("share_after_late_day",)},
            links=links,
            flag="suppressed",
        )
        for name, what, keys, links in (
            (
                "figure8.csv",
                "Figure 8: days to first GC001 by care level and year",
                ("variant", "care_level_group", "year"),
                (),
            ),
            (
                "figure9.csv",
                "Figure 9: days to first GC001 by diagnosis and year",
                ("diagnosis", "year"),
                (),
            ),
            (
                "gc001_timing.csv",
                "day of first GC001 (§3.2)",
                ("unit",),
                # the treated spells of the cohort, and its treated person rows
                (Link("attrition.csv", attrition_link("n", ("unit",), TIMING_UNITS)),),
            ),
        )
    ),
    TableSpec(
        "spell_length_by_care_level.csv",
        "spell length by care level of the first GC001",
        keys=("group",),
        counts=("n",),
        stats={"mean_gross_days": "n", "median_gross_days": "n"},
        implied=_share(("share_censored",)),
        complements=(("share_censored", "n"),),
        # the control row counts every control spell of the cohort
        links=(
            Link(
                "attrition.csv",
                attrition_link("n", GROUP_KEYS, {("Kontroll",): ("cohort", "n_spells_control")}),
            ),
        ),
        flag="suppressed",
    ),
    TableSpec(
        "income_tables_long.csv",
        "Tables B4, B5 and 3: income after the spell, n and count per cell (tidy)",
        keys=("table", "block", "row", "length_class", "group"),
        counts=("n", "count"),
        complements=(("count", "n"),),
        # a share and its CI are count / n: either hidden, they go (a shown count and
        # percent give n back, a 0 % CI's bound gives n); the treated-vs-control tests use
        # both groups' rows
        derived={c: ("count", "n") for c in ("percent", *CI)},
        derived_over={c: (("count", "n"), ROW) for c in P_VALUES},
        relations=combine(
            margin(("n", "count"), ("table", "block", "row", "group"), "length_class", "Alla"),
            steps(("count",), ("table", "block", "length_class", "group"), WINDOWS),
            # regaining the previous level within k months implies some income within k
            nested(("n", "count"), ("table", "row", "length_class", "group"), "block", ANY, BACK),
            # a row's persons (its outcome known) are among its population's
            inside(("n",), ("table", "block", "length_class", "group"), {"row": "n"}, ({},)),
            # Table 3's persons are among B4's and B5's (its end years are among theirs:
            # `outcomes` refuses a configuration where they are not)
            *(
                inside(
                    ("n", "count"),
                    ("length_class", "group"),
                    {"table": table, "block": ANY, "row": "n"},
                    ({"table": TABLE3, "block": block, "row": "n"},),
                )
                for table, block in (("B4", HAD_INCOME), ("B5", NO_INCOME))
            ),
        ),
        flag="suppressed",
    ),
    *(
        TableSpec(
            name,
            what,
            keys=("block", "row"),
            text=ALL_BUT_KEYS,
            links=(
                Link(
                    "income_tables_long.csv",
                    layout_link(
                        ("block", "row"),
                        ("block", "row"),
                        ("length_class", "group"),
                        "count",
                        where={"table": table},
                    ),
                ),
            ),
            # a printed percent is count / n: with the long table's n hidden it goes
            follows=(
                Follow(
                    "income_tables_long.csv",
                    layout_link(
                        ("block", "row"),
                        ("block", "row"),
                        ("length_class", "group"),
                        "n",
                        where={"table": table},
                    ),
                ),
            ),
        )
        for name, what, table in (
            ("table_b4.csv", "Table B4 as printed", "B4"),
            ("table_b5.csv", "Table B5 as printed", "B5"),
            ("table3.csv", "Table 3 as printed", "Tabell 3"),
        )
    ),
    TableSpec(
        "table_b6.csv",
        "Table B6: background of persons without income, by income after",
        keys=("block", "category", "income", "group"),
        counts=("n", "block_total"),
        complements=(("n", "block_total"),),
        derived={"percent": ("n", "block_total")},
        relations=combine(
            group_total("block_total", "n", ("block", "income", "group")),
            b6_blocks_of_everyone,
        ),
        links=(Link("income_tables_long.csv", b6_total_link),),
        flag="suppressed",
    ),
    TableSpec(
        "income_directions.csv",
        "B4/B5/Table 3 differences between treated and controls, with directions",
        keys=("table", "block", "row", "length_class", "income"),
        counts=("n_treated", "n_control"),
        implied={"percent_treated": ("n_treated", 100), "percent_control": ("n_control", 100)},
        complements=(("percent_treated", "n_treated"), ("percent_control", "n_control")),
        links=tuple(
            Link("income_tables_long.csv", column_link(mine, theirs, ROW, ROW, {"group": group}))
            for group, side in (("Insats", "treated"), ("Kontroll", "control"))
            for mine, theirs in ((f"percent_{side}", "count"), (f"n_{side}", "n"))
        )
        # B6's comparisons: a category's share of its block total, per group
        + tuple(
            Link("table_b6.csv", column_link(mine, theirs, B6_ROW, B6_KEYS, {"group": group}))
            for group, side in (("Insats", "treated"), ("Kontroll", "control"))
            for mine, theirs in ((f"percent_{side}", "n"), (f"n_{side}", "block_total"))
        ),
        # a difference, test or direction of the two shares: with either share or n hidden
        derived={
            c: ("percent_treated", "percent_control", "n_treated", "n_control")
            for c in (
                "diff_pp",
                "diff_ci_low",
                "diff_ci_high",
                "p_unadjusted",
                "ame_pp",
                "ame_ci_low",
                "ame_ci_high",
                "p_adjusted",
                "p_value",
                "stars",
                "direction",
                "significant_for",
            )
        },
        flag="suppressed",
    ),
    TableSpec(
        "income_adjusted.csv",
        "adjusted regressions of the income outcomes",
        keys=("model",),
        counts=("n",),
        follows=(
            Follow(
                "income_tables_long.csv",
                same_model,
                MODEL_ESTIMATES,
            ),
        ),
        flag="suppressed",
    ),
    TableSpec(
        "figures13_14.csv",
        "Figures 13-14: share with income after the spell, by length class",
        keys=("figure", "series", "length_class", "group"),
        counts=("n", "n_ref"),
        implied={"percent": ("n", 100)},
        complements=(("percent", "n"), ("n", "n_ref")),
        links=(
            Link("income_tables_long.csv", figure_link("percent", "count")),
            Link("income_tables_long.csv", figure_link("n", "n")),
            Link("income_tables_long.csv", figure_ref_link),
        ),
        derived={c: ("percent",) for c in CI},
        stats={"median_ref_income_sek": "n_ref"},
        flag="suppressed",
    ),
    TableSpec(
        "fk_registrations.csv",
        "§5.3 FK registrations among treated and controls",
        keys=("registration", "group"),
        counts=("n", "count"),
        complements=(("count", "n"),),
        derived={c: ("count", "n") for c in ("percent", *CI)},
        # the treated-vs-control difference uses both rows' counts and n of a registration
        derived_over={c: (("count", "n"), ("registration",)) for c in FK_PAIR},
        # each group's n is its person rows in the attrition flow
        links=(Link("attrition.csv", person_rows_link("n", GROUP_KEYS)),),
        flag="suppressed",
    ),
    TableSpec(
        "fk_timing.csv",
        "§5.3 timing of FK registrations",
        keys=("handelse", "group"),
        counts=("n",),
        stats={"mean_day": "n", "median_day": "n", "median_days_after_first_gc001": "n"},
        # a mean and a median bound the hidden shares beside a shown zero: they go with any
        derived={c: FK_SHARES for c in ("mean_day", "median_day", "median_days_after_first_gc001")},
        implied=_share(FK_SHARES),
        complements=tuple((c, "n") for c in FK_SHARES),
        relations=lambda frame: [
            ((r, "n"), [(r, c) for c in FK_SHARES]) for r in range(frame.height)
        ],
        # the spells with a registration are fk_registrations' count of that registration
        links=(
            Link(
                "fk_registrations.csv",
                column_link("n", "count", ("handelse", "group"), ("registration", "group"), {}),
            ),
        ),
        flag="suppressed",
    ),
    TableSpec(
        "fk_spell_length.csv",
        "§5.3 spell length with and without FK registrations",
        keys=("group", "any_fk"),
        counts=("n", "n_censored"),
        complements=(("n_censored", "n"),),
        stats={"mean_gross_days": "n", "median_gross_days": "n"},
        flag="suppressed",
    ),
    TableSpec(
        "registered_vs_reported.csv",
        "§3.5 registered GC001 per region and year against the regions' reported counts",
        keys=("region", "year"),
        counts=("registered", "registered_primary_care"),
        complements=(("registered_primary_care", "registered"),),
        derived={"register_share": ("registered",)},  # registered / the region's reported
        flag="suppressed",
    ),
    TableSpec(
        "region_exclusion.csv",
        "§3.5 regions kept and dropped by the register-share rule",
        keys=("region",),
        counts=("registered_primary_care", "registered_survey_years"),
        derived={"register_share": ("registered_survey_years",)},
        # a region's totals are sums over its years in registered_vs_reported: hidden when
        # a year is (the total less the shown years would give it back): primary care over
        # all years, all care over the years with a survey count
        follows=(
            Follow(
                "registered_vs_reported.csv",
                region_years("registered_primary_care", survey_years_only=False),
                ("registered_primary_care",),
            ),
            Follow(
                "registered_vs_reported.csv",
                region_years("registered", survey_years_only=True),
                ("registered_survey_years", "register_share"),
            ),
        ),
        flag="suppressed",
    ),
    TableSpec(
        "region_change_2023_2024.csv",
        "§3.5 change in registered and reported counts, 2023 to 2024",
        keys=("region",),
        counts=("registered_2023", "registered_2024"),
        derived={"registered_change_pct": ("registered_2023", "registered_2024")},
        links=tuple(
            Link(
                "registered_vs_reported.csv",
                column_link(
                    f"registered_{year}",
                    "registered",
                    ("region",),
                    ("region",),
                    {"year": str(year)},
                ),
            )
            for year in (2023, 2024)
        ),
    ),
    TableSpec(
        "nb_extra_days.csv",
        "§6.5 extra sick days after GC001 (negative binomial, g-computation)",
        keys=("design", "prior_days"),
        counts=("n",),
    ),
    TableSpec(
        "nb_extra_days_fractional.csv",
        "§6.5 extra sick days, fractional-logit sensitivity analysis",
        keys=("design", "prior_days"),
        counts=("n",),
    ),
    TableSpec(
        "nb_l1334.csv",
        "§6.5 L1334: sick days by the day of first GC001",
        keys=("term",),
        counts=("n",),
    ),
    TableSpec(
        "km_medians.csv",
        "median spell length, Kaplan-Meier, treated and controls",
        keys=("group",),
        counts=("n", "n_events"),
        complements=(("n_events", "n"),),
        stats={c: "n" for c in ("median", *CI)},
    ),
    TableSpec(
        "cox_hr.csv",
        "Cox hazard ratio of leaving sick leave",
        keys=("variance",),
        counts=("n", "n_strata"),
    ),
    TableSpec(
        "gc001_life_table.csv",
        "§4.12 GC001 rate per 1 000 spell days by 30-day band",
        keys=("care_level", "band"),
        counts=("n_at_start", "censored", "events"),
        derived_cells=life_table_cells,
        relations=combine(
            # the chain holds for all care levels pooled; a level's events are its share of
            # the pooled events; the spells at risk and censored are the same at every level
            chained(
                "n_at_start",
                ("censored", "events"),
                ("care_level",),
                "band",
                {"care_level": "Alla"},
            ),
            margin(("events",), ("band",), "care_level", "Alla"),
            same_as_total(("n_at_start", "censored"), ("band",), "care_level", "Alla"),
        ),
        flag="suppressed",
    ),
    TableSpec(
        "gc001_length_rank_deciles.csv",
        "§4.12 treated spells by length decile in their sets",
        keys=("design", "decile"),
        counts=("observed",),
        relations=deciles_add_up,
        flag="suppressed",
    ),
    TableSpec(
        "gc001_length_rank.csv",
        "§4.12 rank of treated spells' length in their sets",
        keys=("design",),
        counts=("n_sets",),
        follows=(Follow("gc001_length_rank_deciles.csv", design_deciles, ("chi2", "chi2_p")),),
    ),
    TableSpec(
        "prior_sick_days.csv",
        "§4.12 sick days in the year before, treated and controls",
        keys=("anchor", "statistic"),
        counts=("n_treated", "n_control"),
        stats={
            **{c: "n_treated" for c in ("treated", "treated_ci_low", "treated_ci_high")},
            **{c: "n_control" for c in ("control", "control_ci_low", "control_ci_high")},
        },
        implied_cells=prior_share_cells,
        derived_cells=prior_derived_cells,
        flag="suppressed",
    ),
    TableSpec(
        "table2_by_region.csv",
        "§4.12 Table 2 by region of the first GC001, as printed",
        keys=("block", "category"),
        text=ALL_BUT_KEYS,
        relations=combine(
            row_total_of_the_rest("Alla", ("block", "category")),
            margin(None, ("block",), "category", "Totalt"),
            printed_blocks_of_everyone,
        ),
        derived_cells=printed_share_of_block_total,
        # "Alla" is Table 2's treated column, its totals Table 2's
        links=(
            Link(
                "table2.csv",
                column_link(
                    "Alla", "Insats Totalt", ("block", "category"), ("block", "category"), {}
                ),
            ),
            Link(
                "table2_long.csv",
                column_link(
                    "Alla",
                    "n",
                    ("block", "category"),
                    ("block", "category"),
                    {"group": "Insats", "ownership": TOTAL},
                ),
            ),
        ),
    ),
    TableSpec(
        "table2_by_region_smd.csv",
        "§4.12 standardised differences, region against all",
        keys=("block", "category"),
        follows=(Follow("table2_by_region.csv", region_smd_cells),),
    ),
    TableSpec(
        "table_b5_prior_spell.csv",
        "§4.12 B5 check: another spell ending in the months before",
        keys=("length_class", "group", "months_before"),
        counts=("n", "count"),
        complements=(("count", "n"),),
        derived={c: ("count", "n") for c in ("percent", *CI)},
        relations=margin(("n", "count"), ("group", "months_before"), "length_class", "Alla"),
        links=(
            Link(
                "income_tables_long.csv",
                column_link(
                    "n",
                    "n",
                    ("length_class", "group"),
                    ("length_class", "group"),
                    {"table": "B5", "block": "Någon inkomst", "row": "n"},
                ),
            ),
        ),
        flag="suppressed",
    ),
)
