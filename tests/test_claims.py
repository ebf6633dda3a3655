"""The §4.12 claims: GC001 life table, length rank in risk sets, prior sick days, B5 check.

Hand-built cohorts with counts worked out by hand, independent implementations
(statsmodels' Wilson interval, scipy's Welch interval, a day-by-day count), and
pipeline runs on synthetic deliveries with a planted GC001 hazard.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import polars as pl
import pytest
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

from pipeline.__main__ import main
from pipeline.core import config, io
from pipeline.core.errors import PipelineError
from pipeline.rules.riskset import RiskSetConfig, build_riskset
from pipeline.stages.claims import (
    ClaimsConfig,
    b5_check,
    length_rank,
    length_rank_tables,
    life_table,
    member_days,
    prior_sickness,
    rank_designs,
)
from tests.helpers import gated
from tests.reference.sickdays import plain_window_days

START = dt.date(2020, 3, 1)
WINDOW = (dt.date(2020, 1, 1), dt.date(2020, 12, 31))
LIFE, DECILES = "gc001_life_table.csv", "gc001_length_rank_deciles.csv"


def day(n: int, origin: dt.date = START) -> dt.date:
    return origin + dt.timedelta(days=n)


def _spell(spell_id, last_day, gc001=None, level=None, start=START, end=None):
    return {
        "spell_id": spell_id,
        "start": start,
        "end": end or day(last_day, start),
        "treated": gc001 is not None,
        "first_gc001": None if gc001 is None else day(gc001, start),
        "care_level_group": level,
    }


# A dozen spells, bands of 10 days up to day 30 (0-9, 10-19, 20-29). By hand:
#   band 0: at start 11 (I starts before the window), events A (day 0, the band's
#     first day) and K (day 3, care level unknown), censored C (ends on day 9, the
#     band's last day) and G (day 5); spell-days 1 + 4 + 10 + 6 + 7 x 10 = 91.
#   band 1: at start 7, event B (day 10, the band's first day, specialised),
#     censored D (ends day 19) and J (window ends on its day 11); days 1 + 10 + 2 + 4 x 10 = 53.
#   band 2: at start 4, events F (day 25) and H (day 29, the last day); days 6 + 10 + 10 + 10
#     = 36; E and L are still at risk after day 29.
HAND_SPELLS = [
    _spell(1, 50, gc001=0, level="primary_care"),  # A
    _spell(2, 50, gc001=10, level="specialised"),  # B
    _spell(3, 9),  # C
    _spell(4, 19),  # D
    _spell(5, 99),  # E
    _spell(6, 80, gc001=25, level="primary_care"),  # F
    _spell(7, 5),  # G
    _spell(8, 40, gc001=29, level="primary_care"),  # H
    _spell(9, 300, start=dt.date(2019, 12, 1)),  # I: starts before the window
    _spell(10, 0, start=dt.date(2020, 12, 20), end=dt.date(2021, 1, 30)),  # J
    _spell(11, 20, gc001=3, level=None),  # K
    _spell(12, 200),  # L
]
HAND = {
    "n_at_start": [11, 7, 4],
    "events": [2, 1, 2],
    "censored": [2, 2, 0],
    "n_after": [7, 4, 2],
    "spell_days": [91, 53, 36],
    "events_primary_care": [1, 0, 2],
    "events_specialised": [0, 1, 0],
    "events_unknown": [1, 0, 0],
}


def hand_table() -> pl.DataFrame:
    spells = pl.DataFrame(HAND_SPELLS, schema_overrides={"care_level_group": pl.String})
    exits = life_table.spell_exits(spells, *WINDOW)
    return life_table.life_table(exits, life_table.Bands(10, 30))


def test_life_table_counts_equal_the_hand_computed_ones():
    table = hand_table()
    for column, expected in HAND.items():
        assert table[column].to_list() == expected, column
    assert table["day_from"].to_list() == [0, 10, 20]
    assert table["day_to"].to_list() == [9, 19, 29]


def test_life_table_rates_cis_and_cumulative_share():
    long = life_table.rates(hand_table(), day_origin=1)
    overall = long.filter(pl.col("care_level") == "Alla")
    assert overall["day_from"].to_list() == [1, 11, 21]  # day_origin shifts the labels
    by_hand = zip(overall.iter_rows(named=True), [2, 1, 2], [91, 53, 36], strict=True)
    for row, events, days in by_hand:
        lo, hi = proportion_confint(events, days, method="wilson")
        assert row["rate_per_1000"] == pytest.approx(1000 * events / days)
        assert (row["ci_low"], row["ci_high"]) == pytest.approx((1000 * lo, 1000 * hi))
    # actuarial: q = events / (at start - censored / 2): 2/10, 1/6, 2/4
    untreated = np.cumprod([1 - 2 / 10, 1 - 1 / 6, 1 - 2 / 4])
    assert overall["cumulative_percent"].to_list() == pytest.approx(100 * (1 - untreated))
    # cause-specific cumulative shares add up to the overall one
    by_level = (
        long.filter(pl.col("care_level") != "Alla")
        .group_by("band")
        .agg(pl.col("cumulative_percent").sum())
    )
    assert by_level.sort("band")["cumulative_percent"].to_list() == pytest.approx(
        overall["cumulative_percent"].to_list()
    )


def test_published_life_table_hides_small_counts_and_nothing_follows_from_the_rest():
    published = gated(life_table.rates(hand_table(), day_origin=0), LIFE, min_count=3)
    shown = published.filter(pl.col("care_level") == "Alla")
    for column in ("n_at_start", "events", "censored"):
        for text in published[column].to_list():
            assert text == ".." or not 0 < int(text) < 3, (column, text)
    # the last band keeps 2 spells at risk after day 29 (E and L): n_at_start 4 = 2 events
    # + 0 censored + 2, so its n_at_start, events or censored cannot all be shown
    last = shown.row(2, named=True)
    assert ".." in (last["n_at_start"], last["events"], last["censored"])
    assert published["suppressed"].to_list().count("true") > 0


def test_life_table_hides_every_derived_number_that_would_give_a_hidden_count_back():
    # Band 1 has 2 censored spells: hidden with a complement. A shown cumulative share or a
    # shown spell-day total of that band or later would give them back (q = events /
    # (n - censored / 2); n <= spell_days <= width x n).
    table = pl.DataFrame(
        {
            "band": [0, 1, 2],
            "day_from": [0, 10, 20],
            "day_to": [9, 19, 29],
            "n_at_start": [400, 300, 240],
            "events": [60, 58, 40],
            "censored": [40, 2, 30],
            "n_after": [300, 240, 170],
            "spell_days": [3500, 2700, 2050],
            "events_primary_care": [50, 50, 30],
            "events_specialised": [10, 8, 10],
        }
    )
    long = gated(life_table.rates(table, day_origin=0), LIFE, min_count=5)
    pooled = long.filter(pl.col("care_level") == "Alla").sort("band")
    assert pooled["censored"].to_list()[1] == ".."
    for level, part in long.group_by("care_level"):
        cumulative = part.sort("band")["cumulative_percent"].to_list()
        assert cumulative[0] != ".." and cumulative[1:] == ["..", ".."], level
    # spell-days of a band follow from its counts and the next band's start: hidden with any
    rows = pooled.to_dicts()
    for band, row in enumerate(rows):
        after = [rows[band + 1]["n_at_start"]] if band + 1 < len(rows) else []
        sources = [row["n_at_start"], row["events"], row["censored"], *after]
        assert (row["spell_days"] == "..") == (".." in sources), band


def test_gehan_score_and_its_permutation_variance_by_hand():
    # One set: case 30 days (ended), controls 10 (ended), 30 (ended), 50 (open at data end).
    # Case vs 10: surely longer (+1); vs 30: tie (0); vs 50 open: the case ended first (-1).
    members = pl.DataFrame(
        {
            "set_id": [1, 1, 1, 1],
            "case": [True, False, False, False],
            "length": [30, 10, 30, 50],
            "censored": [False, False, False, True],
        }
    )
    scores = length_rank.gehan_scores(members)
    # member scores: 30 -> 0, 10 -> -3, 30 -> 0, 50 open -> +3 (longer than all ended ones)
    assert scores["case_score"].to_list() == [0]
    assert scores["score_variance"].to_list() == pytest.approx([(0 + 9 + 0 + 9) / 4])


def test_randomised_rank_is_uniform_when_the_case_is_a_random_member():
    rng = np.random.default_rng(3)
    n_sets, m = 4000, 6
    length = rng.integers(1, 40, size=(n_sets, m))  # many ties
    case = np.zeros((n_sets, m), dtype=bool)
    case[np.arange(n_sets), rng.integers(0, m, n_sets)] = True
    members = pl.DataFrame(
        {
            "set_id": np.repeat(np.arange(n_sets), m),
            "case": case.ravel(),
            "length": length.ravel(),
            "censored": np.zeros(n_sets * m, dtype=bool),
        }
    )
    summary, deciles = length_rank.rank_test(members, seed=1)
    assert summary["chi2_p"] > 0.01 and summary["gehan_p"] > 0.01
    assert deciles["observed"].sum() == n_sets
    # the same sets, with the longest member as the case: both tests reject
    longest = (length == length.max(axis=1, keepdims=True)).cumsum(axis=1) == 1
    members = members.with_columns(pl.Series("case", longest.ravel()))
    summary, _ = length_rank.rank_test(members, seed=1)
    assert summary["gehan_p"] < 1e-6 and summary["chi2_p"] < 1e-6


# --- prior sick days --------------------------------------------------------------------

PERIODS = [  # lopnr, from, to, extent: overlapping, nested and part-time periods
    (1, day(-400), day(-300), 100),
    (1, day(-320), day(-200), 50),  # overlaps the one before at a lower extent
    (1, day(-100), day(-1), 25),
    (1, day(-60), day(-50), 100),  # nested in the 25 % period
    (1, day(0), day(90), 100),  # the spell itself
    (2, day(-30), day(20), 75),  # runs into the spell start
    (3, day(-900), day(-500), 100),  # before the window
]


def test_prior_sick_days_equal_a_day_by_day_count():
    periods = pl.DataFrame(
        PERIODS, schema=["lopnr", "from_datum", "tom_datum", "omfattning"], orient="row"
    ).with_columns(pl.col("lopnr").cast(pl.Int64), pl.col("omfattning").cast(pl.Int16))
    cohort = pl.DataFrame(
        {
            "spell_id": [10, 20, 30],
            "lopnr": [1, 2, 3],
            "start": [START] * 3,
            "treated": [True, False, False],
            "person_row": [True, True, True],
        }
    )
    index = day(40)
    riskset = pl.DataFrame(
        {
            "set_id": [1, 1, 1],
            "spell_id": [10, 20, 30],
            "lopnr": [1, 2, 3],
            "case": [True, False, False],
            "index_date": [index] * 3,
        }
    )
    days = member_days(cohort, cohort, riskset, periods, window=365)
    windows = {  # anchor: (first, last day) by hand
        "spell_start": (day(-365), day(-1)),
        "index": (index - dt.timedelta(365), index - dt.timedelta(1)),
        "index_outside_spell": (index - dt.timedelta(365), day(-1)),  # up to the spell
    }
    assert set(days) == set(windows)
    for anchor, (first_day, last_day) in windows.items():
        frame = days[anchor].sort("lopnr")
        assert frame["lopnr"].to_list() == [1, 2, 3]
        for row in frame.iter_rows(named=True):
            net, _ = plain_window_days(PERIODS, row["lopnr"], first_day, last_day)
            assert row["net_days"] == pytest.approx(net), (anchor, row["lopnr"])
    # a spell that began more than the window before the index leaves an empty window: 0
    short = member_days(cohort, cohort, riskset, periods, window=30)["index_outside_spell"]
    assert short["net_days"].to_list() == [0.0, 0.0, 0.0]
    # by hand for person 1 before the start: days -365..-300 at 100 % (66 days), -299..-200
    # at 50 % (100 days), -100..-1 at 25 % except -60..-50 at 100 % (89 x 0.25 + 11)
    first = days["spell_start"].filter(pl.col("lopnr") == 1)["net_days"].item()
    assert first == pytest.approx(66 + 100 * 0.5 + 89 * 0.25 + 11)


def test_compare_independent_groups_against_scipy_and_by_hand():
    rng = np.random.default_rng(5)
    x = np.r_[np.zeros(40), rng.integers(1, 200, 60)].astype(float)
    y = np.r_[np.zeros(120), rng.integers(1, 150, 80)].astype(float)
    frame = pl.DataFrame({"treated": [True] * 100 + [False] * 200, "net_days": np.r_[x, y]})
    rows = {r["statistic"]: r for r in prior_sickness.compare(frame, "spell_start", 500, 1)}
    welch = stats.ttest_ind(x, y, equal_var=False).confidence_interval(0.95)
    assert rows["mean"]["difference"] == pytest.approx(x.mean() - y.mean())
    assert (rows["mean"]["diff_ci_low"], rows["mean"]["diff_ci_high"]) == pytest.approx(
        (welch.low, welch.high)
    )
    assert rows["share_any"]["treated"] == pytest.approx(60.0)
    assert rows["share_any"]["control"] == pytest.approx(40.0)
    assert rows["median"]["difference"] == pytest.approx(np.median(x) - np.median(y))
    assert rows["median"]["diff_ci_low"] < rows["median"]["difference"]
    assert rows["median"]["diff_ci_high"] > rows["median"]["difference"]


def test_compare_matched_sets_pairs_within_sets():
    # set 1: case 10, controls 0 and 20 (mean 10) -> 0; set 2: case 30, control 10 -> 20;
    # set 3: case 5, controls 5, 5 -> 0: mean difference 20 / 3
    frame = pl.DataFrame(
        {
            "set_id": [1, 1, 1, 2, 2, 3, 3, 3],
            "treated": [True, False, False, True, False, True, False, False],
            "net_days": [10.0, 0.0, 20.0, 30.0, 10.0, 5.0, 5.0, 5.0],
        }
    )
    rows = {r["statistic"]: r for r in prior_sickness.compare(frame, "index", 100, 1)}
    d = np.array([0.0, 20.0, 0.0])
    half = stats.norm.ppf(0.975) * d.std(ddof=1) / math.sqrt(3)
    assert rows["mean"]["difference"] == pytest.approx(20 / 3)
    assert rows["mean"]["control"] == pytest.approx((10 + 10 + 5) / 3)
    assert (rows["mean"]["diff_ci_low"], rows["mean"]["diff_ci_high"]) == pytest.approx(
        (20 / 3 - half, 20 / 3 + half)
    )
    # any sick day: cases 3/3; controls per set 1/2, 1, 1 -> mean 5/6
    assert rows["share_any"]["difference"] == pytest.approx(100 * (1 - 5 / 6))


def test_published_prior_days_hide_a_share_whose_complement_is_small_and_its_difference():
    # 100 treated, 3 without sick days: the share with any (97 %) gives 3 back with n
    x = np.r_[np.zeros(3), np.arange(1, 98)].astype(float)
    y = np.r_[np.zeros(80), np.arange(1, 121)].astype(float)
    frame = pl.DataFrame({"treated": [True] * 100 + [False] * 200, "net_days": np.r_[x, y]})
    rows = pl.DataFrame(prior_sickness.compare(frame, "spell_start", 50, 1))
    published = gated(rows, "prior_sick_days.csv").to_dicts()
    share = next(r for r in published if r["statistic"] == "share_any")
    assert share["treated"] == share["treated_ci_low"] == share["difference"] == ".."
    assert share["control"] == "60.0" and share["suppressed"] == "true"  # 120 of 200
    mean = next(r for r in published if r["statistic"] == "mean")
    assert ".." not in mean.values()


# --- B5: a spell just before ------------------------------------------------------------


def test_b5_prior_spell_is_another_spell_ending_in_the_three_months_before_the_start_month():
    # Start 2021-04-10: the window is 2021-01-01 .. 2021-03-31.
    b5 = pl.DataFrame(
        {"spell_id": [1, 2, 3, 4], "lopnr": [1, 2, 3, 4], "start": [dt.date(2021, 4, 10)] * 4}
    )
    spells = pl.DataFrame(
        {
            "spell_id": [1, 11, 2, 12, 3, 13, 4],
            "lopnr": [1, 1, 2, 2, 3, 3, 4],
            "end": [
                dt.date(2021, 6, 1),
                dt.date(2021, 1, 1),  # first day of month s-3: in
                dt.date(2021, 6, 1),
                dt.date(2020, 12, 31),  # the day before: out
                dt.date(2021, 6, 1),
                dt.date(2021, 4, 2),  # inside the start month: out
                dt.date(2021, 3, 31),  # the spell itself (impossible, but never counted)
            ],
        }
    )
    flagged = b5_check.with_prior_spell(b5, spells, months=3).sort("spell_id")
    assert flagged["prior_spell"].to_list() == [True, False, False, False]


# --- synthetic deliveries with a planted hazard -----------------------------------------

PLANTED_BANDS = ((0, 4.0), (30, 2.5), (90, 1.5), (180, 0.8))


def _run_pipeline(base, *overrides: str) -> dict[str, pl.DataFrame]:
    common = [
        "synth.size=small",
        "synth.sizes.small=20000",
        f"synth.out_dir={base}/delivery",
        f"synth.truth_dir={base}/truth",
        f"paths.staged={base}/staged",
        f"paths.quarantine={base}/quarantine",
        f"paths.outputs={base}/outputs",
        "synth.gc001_timing=hazard",
        "synth.gc001_hazard_bands=" + str([list(b) for b in PLANTED_BANDS]).replace(" ", ""),
        "synth.private_share=0",  # every GC001 in the analysed regions is registered
        "synth.effect.extra_days_intercept=0",  # treatment does not change the length
        "synth.effect.extra_days_slope_per_180=0",
        "claims.max_day=360",
        *overrides,
    ]
    stages = ("synth", "stage", "spells", "exposure", "cohort", "income", "outcomes")
    for stage in (*stages, "income_models", "income_tables"):
        assert main([stage, *common]) == 0, stage
    assert main(["riskset", *common]) == 0
    assert main(["claims", *common]) == 0
    tables = base / "outputs" / "results"
    return {
        name: pl.read_csv(tables / f"{name}.csv")
        for name in ("gc001_life_table", "gc001_length_rank", "prior_sick_days")
    }


@pytest.fixture(scope="module")
def flat_run(tmp_path_factory):
    return _run_pipeline(tmp_path_factory.mktemp("flat"))


@pytest.fixture(scope="module")
def tilted_run(tmp_path_factory):
    return _run_pipeline(tmp_path_factory.mktemp("tilted"), "synth.gc001_length_dependence=1")


def test_life_table_recovers_the_planted_hazard(flat_run):
    overall = flat_run["gc001_life_table"].filter(pl.col("care_level") == "Alla")
    starts = [a for a, _ in PLANTED_BANDS]
    # 12 bands: each must hold the planted rate within a Bonferroni-widened 95 % interval,
    # and at most two may miss it with their own 95 % CI (expected 0.6 of 12)
    z = stats.norm.ppf(1 - 0.05 / (2 * overall.height))
    missed = 0
    for row in overall.iter_rows(named=True):
        rate = PLANTED_BANDS[np.searchsorted(starts, row["day_from"], side="right") - 1][1]
        planted = 1000 * (1 - math.exp(-rate / 1000))  # a day's probability, per 1 000
        se = 1000 * math.sqrt(planted / 1000 / row["spell_days"])
        assert abs(row["rate_per_1000"] - planted) < z * se, row
        missed += not row["ci_low"] <= planted <= row["ci_high"]
    assert missed <= 2


def _design(run, prefix):
    rows = run["gc001_length_rank"].filter(pl.col("design").str.starts_with(prefix))
    assert rows.height == 1
    return rows.row(0, named=True)


def test_rank_test_does_not_reject_when_length_does_not_matter(flat_run):
    fair = _design(flat_run, "at-risk spells, not_yet_treated")
    assert fair["n_sets"] > 500
    assert fair["gehan_p"] > 0.05 and fair["chi2_p"] > 0.05
    assert abs(fair["mean_rank"] - 0.5) < 0.03
    # The report's design (never-treated controls) finds a length effect that is not there:
    # spells never treated are selected to be short.
    biased = _design(flat_run, "§6.2 sets, never_treated")
    assert biased["chi2_p"] < 0.001


def test_rank_test_rejects_when_longer_spells_are_treated_more_often(tilted_run):
    tilted = _design(tilted_run, "at-risk spells, not_yet_treated")
    assert tilted["gehan_z"] > 0 and tilted["gehan_p"] < 0.001
    assert tilted["mean_rank"] > 0.55


def test_config_rejects_an_unknown_rank_control_mode():
    cfg = config.compose(["claims.rank_control_mode=everyone"])
    with pytest.raises(PipelineError, match=r"claims\.rank_control_mode"):
        ClaimsConfig.from_config(cfg)


# --- the stage's outputs on the shared end-to-end run -----------------------------------


def test_region_table_pooled_column_keeps_table2s_suppression(run_dir):
    tables = run_dir / "outputs" / "results"
    table2 = pl.read_csv(tables / "table2.csv", infer_schema_length=0)
    by_region = pl.read_csv(tables / "table2_by_region.csv", infer_schema_length=0)
    joined = table2.join(by_region, on=["block", "category"])
    assert joined.height == table2.height
    assert (joined["Insats Totalt"] == "..").to_list() == (joined["Alla"] == "..").to_list()
    assert (
        joined.filter(pl.col("Insats Totalt") != "..")
        .select(
            (
                pl.col("Insats Totalt").str.extract(r"^(\d+)")
                == pl.col("Alla").str.extract(r"^(\d+)")
            ).all()
        )
        .item()
    )


def test_life_table_output_is_consistent_and_hides_small_counts(run_dir):
    long = pl.read_csv(run_dir / "outputs" / "tables" / LIFE, null_values="..")
    overall = long.filter(pl.col("care_level") == "Alla").sort("band")
    shown = overall.filter(pl.col("events").is_not_null() & pl.col("censored").is_not_null())
    next_start = overall["n_at_start"].shift(-1)
    for row, after in zip(overall.iter_rows(named=True), next_start, strict=True):
        if None not in (row["events"], row["censored"], row["n_at_start"], after):
            assert row["n_at_start"] == row["events"] + row["censored"] + after
    assert shown.height > 0
    min_count = config.compose([])["disclosure"]["min_count"]
    counts = long.select("n_at_start", "events", "censored").to_numpy().ravel()
    counts = counts[~np.isnan(counts.astype(float))]
    assert not ((counts > 0) & (counts < min_count)).any()
    # the rates of the care levels add up to the overall rate where all are shown
    levels = (
        long.filter(pl.col("care_level") != "Alla")
        .group_by("band")
        .agg(pl.col("rate_per_1000").sum(), pl.col("rate_per_1000").null_count().alias("hidden"))
    )
    both = overall.join(levels, on="band", suffix="_levels").filter(pl.col("hidden") == 0)
    assert both.height > 0
    assert both["rate_per_1000"].to_list() == pytest.approx(both["rate_per_1000_levels"].to_list())


def test_report_sentences_quote_the_claims_tables_and_say_hidden_for_hidden_cells(run_dir):
    from pipeline.report import words
    from pipeline.report.claims import b5_lines, claim_lines

    tables = run_dir / "outputs" / "tables"
    lines = claim_lines(tables, 0.1)
    rank = pl.read_csv(tables / "gc001_length_rank.csv", infer_schema_length=0)
    for design in rank["design"]:
        assert sum(f"({words.value(design)})" in line for line in lines) == 1
    html = (run_dir / "outputs" / "report.html").read_text(encoding="utf-8")
    assert html.count("Fallets rang efter längd i sitt riskset") == rank.height
    b5 = pl.DataFrame(
        {
            "length_class": ["Alla", "Alla"],
            "group": ["Insats", "Kontroll"],
            "months_before": ["3", "3"],
            "percent": [None, "12.5"],
            "ci_low": [None, "8.0"],
            "ci_high": [None, "18.75"],
        }
    )
    (line,) = b5_lines(b5)
    assert "Insats dold %" in line and "Kontroll 12,5 % (95 % KI 8,0–18,8)" in line


def test_rank_tables_hide_the_chi_square_when_a_decile_is_hidden():
    from pipeline.stages.claims import length_rank_tables

    rng = np.random.default_rng(11)
    n_sets, m = 30, 4
    riskset = pl.DataFrame(
        {
            "set_id": np.repeat(np.arange(n_sets), m),
            "spell_id": np.arange(n_sets * m),
            "case": np.tile([True, False, False, False], n_sets),
        }
    )
    spells = pl.DataFrame(
        {
            "spell_id": np.arange(n_sets * m),
            "gross_days": rng.integers(30, 400, n_sets * m),
            "censored": np.zeros(n_sets * m, dtype=bool),
        }
    )
    conf = ClaimsConfig.from_config(config.compose([]))
    summary, deciles = length_rank_tables({"d": riskset}, spells, conf)
    assert summary["chi2"].is_not_null().all()  # the stage writes whole
    deciles = gated(deciles, "gc001_length_rank_deciles.csv")
    summary = gated(summary, "gc001_length_rank.csv", published={DECILES: deciles})
    assert (deciles["suppressed"] == "true").any()  # 30 sets in 10 deciles: some below 5
    row = summary.row(0, named=True)
    assert row["n_sets"] == str(n_sets) and row["chi2"] == ".." and row["chi2_p"] == ".."
    # the deciles add up to 10 x expected (= n_sets, shown): at least two are hidden
    assert (deciles["observed"] == "..").sum() >= 2


def test_rank_test_uses_the_riskset_stages_at_risk_sets(run_dir, tmp_path):
    """claims draws no sets: the at-risk design is riskset_at_risk_<rank mode>.parquet, the
    sets drawn among the at-risk spells with riskset.k, match_on and seed."""
    cfg = config.compose([])
    conf = ClaimsConfig.from_config(cfg)
    outputs = run_dir / "outputs"
    r = cfg.riskset
    drawn = RiskSetConfig(
        int(r.k), conf.rank_control_mode, tuple(r.match_on), int(r.seed), bool(r.reuse_controls)
    )
    at_risk_sets = pl.read_parquet(outputs / f"riskset_at_risk_{conf.rank_control_mode}.parquet")
    assert at_risk_sets.equals(
        build_riskset(pl.read_parquet(outputs / "cohort_at_risk.parquet"), drawn)
    )
    report_sets = pl.read_parquet(outputs / "riskset_never_treated.parquet")
    designs = rank_designs(at_risk_sets, report_sets, conf)
    summary, _ = length_rank_tables(designs, pl.read_parquet(outputs / "spells.parquet"), conf)
    io.write_csv(summary, tmp_path / "gc001_length_rank.csv")
    written = outputs / "results" / "gc001_length_rank.csv"
    assert (tmp_path / "gc001_length_rank.csv").read_bytes() == written.read_bytes()


def test_rounding_instead_of_suppression_rounds_the_life_table_and_prior_days():
    from pipeline.report.publication import DisclosureRules, publish
    from pipeline.report.publication.specs import SPECS

    specs = {s.file: s for s in SPECS}
    rules = DisclosureRules(min_count=5, method="round")
    life = pl.read_csv(life_table.rates(hand_table(), 0).write_csv().encode(), infer_schema=False)
    rounded, _ = publish(life, specs[LIFE], rules)
    for column in ("n_at_start", "events", "censored"):
        assert all(int(v) % 5 == 0 for v in rounded[column])
    # rates, CIs, spell-days and cumulative shares come from unrounded counts: left out
    for column in ("spell_days", "rate_per_1000", "ci_low", "cumulative_percent"):
        assert rounded[column].is_null().all(), column
    x = np.r_[np.zeros(3), np.arange(1, 98)].astype(float)
    y = np.r_[np.zeros(80), np.arange(1, 121)].astype(float)
    frame = pl.DataFrame({"treated": [True] * 100 + [False] * 200, "net_days": np.r_[x, y]})
    prior = pl.DataFrame(prior_sickness.compare(frame, "spell_start", 50, 1))
    prior = pl.read_csv(prior.write_csv().encode(), infer_schema=False)
    rounded, _ = publish(prior, specs["prior_sick_days.csv"], rules)
    share = rounded.filter(pl.col("statistic") == "share_any").row(0, named=True)
    # 97 of 100 -> 95 of 100, 120 of 200 -> 120 of 200: shares from the rounded counts
    assert float(share["treated"]) == pytest.approx(95.0)
    assert float(share["control"]) == pytest.approx(60.0)
    assert share["difference"] is None and share["treated_ci_low"] is None
