"""Risk-set sampling: eligibility against brute force, set sizes, uniformity, determinism."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import subprocess
import sys

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from pipeline.core import config
from pipeline.core.errors import PipelineError
from pipeline.rules.riskset import MODES, RiskSetConfig, build_riskset
from pipeline.stages import riskset as riskset_stage
from tests.helpers import documented_columns
from tests.reference.riskset import plain_eligible

D0 = dt.date(2020, 1, 1)


def conf(k=5, mode="never_treated", match_on=(), seed=1) -> RiskSetConfig:
    return RiskSetConfig(k=k, control_mode=mode, match_on=tuple(match_on), seed=seed)


def cohort_from(rows: list[tuple]) -> pl.DataFrame:
    """rows: (lopnr, start offset days, length days, first GC001 day or None, sex)."""
    out = []
    for spell_id, (lopnr, start, length, first, sex) in enumerate(rows):
        s = D0 + dt.timedelta(days=start)
        out.append(
            {
                "spell_id": spell_id, "lopnr": lopnr, "start": s,
                "end": s + dt.timedelta(days=length - 1), "treated": first is not None,
                "first_gc001": s + dt.timedelta(days=first) if first is not None else None,
                "sex": sex,
            }
        )  # fmt: skip
    return pl.DataFrame(out).with_columns(pl.col("first_gc001").cast(pl.Date))


def brute_force_eligible(cohort: pl.DataFrame, case: dict, mode: str, match_on=()) -> set[int]:
    """Spell ids eligible as controls for `case`, by the definition, row by row."""
    t = (case["first_gc001"] - case["start"]).days
    eligible = set()
    for c in cohort.iter_rows(named=True):
        same_month = (c["start"].year, c["start"].month) == (
            case["start"].year,
            case["start"].month,
        )
        ongoing = (c["end"] - c["start"]).days >= t
        if mode == "never_treated":
            untreated = not c["treated"]
        else:
            untreated = not c["treated"] or (c["first_gc001"] - c["start"]).days > t
        matched = all(c[m] == case[m] for m in match_on)
        if same_month and ongoing and untreated and matched and c["lopnr"] != case["lopnr"]:
            eligible.add(c["spell_id"])
    return eligible


cohorts = st.lists(
    st.tuples(
        st.integers(1, 12),  # lopnr
        st.integers(0, 70),  # start offset: three calendar months
        st.integers(1, 120),  # length
        st.one_of(st.none(), st.integers(0, 60)),  # first GC001 day
        st.sampled_from(["Kvinnor", "Män"]),
    ),
    min_size=1,
    max_size=40,
).map(lambda rows: [(p, s, n, f if f is None or f < n else None, x) for p, s, n, f, x in rows])


@settings(max_examples=120, deadline=None)
@given(
    rows=cohorts,
    k=st.integers(1, 4),
    mode=st.sampled_from(["never_treated", "not_yet_treated"]),
    match=st.booleans(),
)
def test_every_control_is_eligible_and_set_sizes_match_a_brute_force_count(rows, k, mode, match):
    cohort = cohort_from(rows)
    match_on = ("sex",) if match else ()
    sets = build_riskset(cohort, conf(k=k, mode=mode, match_on=match_on))
    by_id = {r["spell_id"]: r for r in cohort.iter_rows(named=True)}
    cases = cohort.filter("treated")
    assert sets.filter("case").height == cases.height
    for _, members in sets.group_by("set_id"):
        case = by_id[members.filter("case")["spell_id"].item()]
        eligible = brute_force_eligible(cohort, case, mode, match_on)
        controls = members.filter(~pl.col("case"))["spell_id"].to_list()
        assert set(controls) <= eligible
        assert len(set(controls)) == len(controls) == min(k, len(eligible))
        assert members["n_eligible"].unique().to_list() == [len(eligible)]
        t = (case["first_gc001"] - case["start"]).days
        assert members["t"].unique().to_list() == [t]
        for c in members.filter(~pl.col("case")).iter_rows(named=True):
            assert c["index_date"] == by_id[c["spell_id"]]["start"] + dt.timedelta(days=t)


def test_each_eligible_control_is_drawn_with_equal_probability():
    # 3 000 cases at day 0 in one month, 10 eligible controls; k = 3.
    rows = [(1000 + i, 0, 30, 0, "Män") for i in range(3000)]
    rows += [(i, 1, 30, None, "Män") for i in range(10)]
    sets = build_riskset(cohort_from(rows), conf(k=3, seed=12345))
    counts = sets.filter(~pl.col("case"))["spell_id"].value_counts().sort("spell_id")["count"]
    assert counts.len() == 10 and counts.sum() == 9000
    assert stats.chisquare(counts.to_numpy()).pvalue > 0.001


def test_fewer_eligible_than_k_takes_all_and_none_gives_an_empty_set():
    rows = [
        (1, 0, 100, 40, "Män"),
        (2, 3, 50, None, "Män"),
        (3, 5, 30, None, "Män"),
        (4, 0, 100, 0, "Män"),
    ]
    sets = build_riskset(cohort_from(rows), conf(k=5))
    first = sets.filter(pl.col("set_id") == 0)  # case t = 40: only spell 1 (50 days) still on
    assert first.filter(~pl.col("case"))["spell_id"].to_list() == [1]
    assert first["n_eligible"].unique().to_list() == [1]
    second = sets.filter(pl.col("set_id") == 1)  # case t = 0: spells 1, 2
    assert sorted(second.filter(~pl.col("case"))["spell_id"].to_list()) == [1, 2]


def _digest(frame: pl.DataFrame) -> str:
    return hashlib.sha256(frame.write_csv().encode()).hexdigest()


def test_same_seed_same_sets_and_another_seed_other_sets():
    rows = [(1000 + i, i % 60, 40 + i % 90, i % 30, "Män") for i in range(300)]
    rows += [(i, i % 60, 20 + i % 200, None, "Kvinnor") for i in range(2000)]
    cohort = cohort_from(rows)
    a = build_riskset(cohort, conf(seed=7))
    assert _digest(a) == _digest(
        build_riskset(cohort.sample(fraction=1.0, shuffle=True, seed=3), conf(seed=7))
    )
    assert _digest(a) != _digest(build_riskset(cohort, conf(seed=8)))


def test_sets_are_identical_with_one_or_two_threads(tmp_path):
    script = (
        "import sys, polars as pl; from pipeline.rules.riskset import build_riskset, RiskSetConfig;"
        "c = pl.read_parquet(sys.argv[1]);"
        "print(build_riskset(c, RiskSetConfig(5, 'never_treated', (), 11)).hash_rows().sum())"
    )
    rows = [(1000 + i, i % 60, 40 + i % 90, i % 30, "Män") for i in range(500)]
    rows += [(i, i % 60, 20 + i % 200, None, "Män") for i in range(5000)]
    path = tmp_path / "cohort.parquet"
    cohort_from(rows).write_parquet(path)
    outs = []
    for threads in ("1", "2"):
        env = os.environ | {"POLARS_MAX_THREADS": threads, "OMP_NUM_THREADS": threads}
        command = [sys.executable, "-c", script, str(path)]
        run = subprocess.run(
            command, env=env, capture_output=True, text=True, check=True, cwd=config.ROOT
        )
        outs.append(run.stdout.strip())
    assert outs[0] == outs[1]


def test_not_yet_treated_admits_a_later_treated_spell_as_control():
    rows = [(1, 0, 100, 10, "Män"), (2, 2, 100, 50, "Män"), (3, 4, 100, 5, "Män")]
    never = build_riskset(cohort_from(rows), conf(mode="never_treated"))
    later = build_riskset(cohort_from(rows), conf(mode="not_yet_treated"))
    assert never.filter(~pl.col("case")).height == 0
    first_set = later.filter((pl.col("set_id") == 0) & ~pl.col("case"))  # case t = 10
    # spell 1 is treated on day 50 > 10, spell 2 already on day 5
    assert first_set["spell_id"].to_list() == [1]
    # spell 2 (GC001 on day 5) is never a control: no case has t < 5 but itself
    assert 2 not in later.filter(~pl.col("case"))["spell_id"].to_list()


@settings(max_examples=60, deadline=None)
@given(
    rows=cohorts, k=st.integers(1, 4), mode=st.sampled_from(["never_treated", "not_yet_treated"])
)
def test_without_reuse_every_control_serves_one_set_and_stays_eligible(rows, k, mode):
    cohort = cohort_from(rows)
    c = RiskSetConfig(k=k, control_mode=mode, match_on=(), seed=3, reuse_controls=False)
    sets = build_riskset(cohort, c)
    controls = sets.filter(~pl.col("case"))
    assert controls["spell_id"].is_unique().all()
    by_id = {r["spell_id"]: r for r in cohort.iter_rows(named=True)}
    for _, members in sets.group_by("set_id"):
        case = by_id[members.filter("case")["spell_id"].item()]
        eligible = brute_force_eligible(cohort, case, mode)
        chosen = members.filter(~pl.col("case"))["spell_id"].to_list()
        assert set(chosen) <= eligible and len(chosen) <= k
    # a set is short of k only when every eligible control is used by another set
    used = set(controls["spell_id"].to_list())
    for _, members in sets.group_by("set_id"):
        case = by_id[members.filter("case")["spell_id"].item()]
        if members.height - 1 < k:
            assert brute_force_eligible(cohort, case, mode) <= used


# --- the `riskset` stage: both control modes, two candidate frames -----------------------


DATA_END = dt.date(2020, 6, 30)


def _stage_run(tmp_path, *overrides: str) -> dict[str, pl.DataFrame]:
    """Run the stage on a small cohort: the population holds the cohort's spells and
    short controls (< 30 days, not in the cohort); the at-risk spells are the population
    and a few more spells outside it (those starting after day 50); data end DATA_END."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    rows = [(1000 + i, i % 60, 40 + i % 90, i % 30, "Män") for i in range(60)]
    rows += [(i, i % 60, 20 + i % 200, None, "Män") for i in range(400)]
    rows += [(2000 + i, i % 60, 1 + i % 29, None, "Män") for i in range(40)]
    population = cohort_from(rows).with_columns(
        pl.col("spell_id").is_in(range(460)).alias("cohort")
    )
    cohort = population.filter("cohort").drop("cohort")
    long = (pl.col("end") - pl.col("start")).dt.total_days() >= 29
    cohort = cohort.filter(pl.col("treated") | long)
    cohort.write_parquet(tmp_path / "cohort.parquet")
    extra = cohort_from([(3000 + i, 50 + i, 10 + i, None, "Män") for i in range(10)]).with_columns(
        pl.col("spell_id") + 10_000, pl.lit(False).alias("population_any_length")
    )
    at_risk = pl.concat(
        [population.drop("cohort").with_columns(pl.lit(True).alias("population_any_length")), extra]
    ).with_columns(long.alias("long_enough"))
    at_risk.write_parquet(tmp_path / "cohort_at_risk.parquet")
    # hand-built spells carry no diagnosis: start month only (matching is tested above)
    fixed = [f"paths.outputs={tmp_path}", f"data.end_date='{DATA_END}'", "riskset.match_on=[]"]
    riskset_stage.run(config.compose([*fixed, *overrides]))
    return {p.name: pl.read_parquet(p) for p in tmp_path.glob("riskset*.parquet")}


@pytest.mark.parametrize("rule", ["at_index", "whole_spell"])
@pytest.mark.parametrize("configured", MODES)
def test_the_stage_writes_both_modes_and_riskset_parquet_is_the_configured_one(
    tmp_path, configured, rule
):
    written = _stage_run(
        tmp_path,
        f"riskset.control_mode={configured}",
        "riskset.seed=5",
        f"riskset.control_length_rule={rule}",
    )
    assert set(written) == {
        "riskset.parquet",
        *(f"riskset_{m}.parquet" for m in MODES),
        *(f"riskset_at_risk_{m}.parquet" for m in MODES),
    }
    cohort = pl.read_parquet(tmp_path / "cohort.parquet")
    at_risk = pl.read_parquet(tmp_path / "cohort_at_risk.parquet")
    never = at_risk.filter("population_any_length")  # the spells the test puts in the population
    pools = {  # written out by hand: the cohort's spells, the population's, all at risk
        ("never_treated", "whole_spell"): cohort,
        ("never_treated", "at_index"): never,
        ("not_yet_treated", "whole_spell"): at_risk.filter("long_enough"),
        ("not_yet_treated", "at_index"): at_risk,
    }
    for prefix, frame in {"riskset": cohort, "riskset_at_risk": at_risk}.items():
        for mode in MODES:
            candidates = at_risk if prefix == "riskset_at_risk" else pools[mode, rule]
            expected = build_riskset(frame, conf(k=5, mode=mode, seed=5), candidates, DATA_END)
            assert written[f"{prefix}_{mode}.parquet"].equals(expected)
            assert written[f"{prefix}_{mode}.parquet"]["control_mode"].unique().to_list() == [mode]
    configured_file = tmp_path / f"riskset_{configured}.parquet"
    assert (tmp_path / "riskset.parquet").read_bytes() == configured_file.read_bytes()
    # the spells outside the population (untreated spells of treated persons, say) serve
    # as not-yet-treated controls only, and only when the length rule lets them
    outside = pl.col("spell_id") >= 10_000
    used = {m: written[f"riskset_{m}.parquet"].filter(outside).height for m in MODES}
    assert used["never_treated"] == 0
    assert (used["not_yet_treated"] > 0) == (rule == "at_index")


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("riskset.control_mode=everyone", r"riskset\.control_mode"),
        ("riskset.k=0", r"riskset\.k"),
        ("riskset.control_length_rule=ever", r"riskset\.control_length_rule"),
    ],
)
def test_the_stage_rejects_a_bad_riskset_config(override, key):
    with pytest.raises(PipelineError, match=key):
        riskset_stage.riskset_config(config.compose([override]))


@pytest.mark.parametrize(
    "name",
    [
        "riskset.parquet",
        *(f"riskset_{m}.parquet" for m in MODES),
        *(f"riskset_at_risk_{m}.parquet" for m in MODES),
    ],
)
def test_every_riskset_file_has_the_documented_columns(run_dir, name):
    written = pl.read_parquet_schema(run_dir / "outputs" / name)
    heading = name.replace("never_treated", "<mode>").replace("not_yet_treated", "<mode>")
    documented = documented_columns(f"outputs/{heading}")
    assert documented == documented_columns("outputs/riskset.parquet")
    assert documented == [(n, str(t)) for n, t in written.items()]


# --- issue 15: t < 0, the length rule at the index, the data end -------------------------


def test_a_case_with_gc001_before_its_start_draws_only_from_its_own_start_month():
    # The January-in-February bug: a February case with its GC001 four days before its
    # spell's first day (t = -4, exposure.pre_start_grace_days > 0) took the longest
    # January spell, because the search key sid * big + t fell into January's range.
    rows = [
        (1, 9, 200, None, "Män"),  # spell 0: January, the longest candidate
        (2, 35, 60, -4, "Män"),  # spell 1: February case, GC001 on day -4
        (3, 40, 30, None, "Män"),  # spell 2: February control
    ]
    sets = build_riskset(cohort_from(rows), conf(k=5))
    controls = sets.filter(~pl.col("case"))
    assert controls["spell_id"].to_list() == [2]
    assert sets["t"].unique().to_list() == [-4]
    assert sets["n_eligible"].unique().to_list() == [1]
    # the control's index keeps the case's offset from the spell start
    assert controls["index_date"].item() == D0 + dt.timedelta(days=40 - 4)


def test_a_case_before_its_start_with_not_yet_treated_controls_uses_the_same_day():
    # case t = -4; candidates treated on day -6 (treated before the index: never
    # eligible), day -4 (treated on the index day: not eligible), day -2 (not yet
    # treated on day -4: eligible), and an untreated spell (eligible).
    rows = [
        (1, 35, 60, -4, "Män"),
        (2, 36, 60, -6, "Män"),
        (3, 37, 60, -4, "Män"),
        (4, 38, 60, -2, "Män"),
        (5, 39, 60, None, "Män"),
    ]
    sets = build_riskset(cohort_from(rows), conf(k=5, mode="not_yet_treated"))
    first = sets.filter((pl.col("set_id") == 0) & ~pl.col("case"))
    assert first["spell_id"].to_list() == [3, 4]


def test_at_the_index_a_short_control_on_sick_leave_at_t_serves_a_case_with_t_below_30():
    # case t = 10; control A lasts 20 days (on sick leave on day 10, shorter than 30:
    # outside the cohort), control B lasts 90 days (in the cohort), control C lasts 8
    # days (off sick leave on day 10).
    rows = [(1, 0, 100, 10, "Män"), (2, 1, 20, None, "Män"), (3, 2, 90, None, "Män")]
    rows += [(4, 3, 8, None, "Män")]
    population = cohort_from(rows)
    cohort = population.filter(pl.col("spell_id") != 1)  # the 30-day rule drops A
    at_index = build_riskset(cohort, conf(k=5), population)  # the population of any length
    whole = build_riskset(cohort, conf(k=5))  # the report's reading: the cohort's controls
    assert at_index.filter(~pl.col("case"))["spell_id"].to_list() == [1, 2]
    assert whole.filter(~pl.col("case"))["spell_id"].to_list() == [2]
    # and the case itself comes from the cohort either way
    assert at_index.filter("case")["spell_id"].to_list() == [0]


def test_a_candidate_is_not_at_risk_after_the_data_end():
    # data end = day 45 of January's spells. Spell 2 (200 days) runs past it.
    # Case t = 40 (index on or before the data end): spell 2 eligible.
    # Case t = 50 (index after the data end): nothing is eligible, whatever the length.
    rows = [(1, 0, 100, 40, "Män"), (2, 0, 200, None, "Män"), (3, 0, 100, 50, "Män")]
    cohort = cohort_from(rows)
    end = D0 + dt.timedelta(days=45)
    sets = build_riskset(cohort, conf(k=5), None, end)
    assert sets.filter((pl.col("set_id") == 0) & ~pl.col("case"))["spell_id"].to_list() == [1]
    assert sets.filter(pl.col("set_id") == 1)["n_eligible"].to_list() == [0]
    assert build_riskset(cohort, conf(k=5)).filter(pl.col("set_id") == 1)["n_eligible"][0] == 1


@pytest.mark.parametrize("mode", MODES)
def test_the_stage_draws_short_controls_at_the_index_and_not_under_whole_spell(tmp_path, mode):
    at_index = _stage_run(
        tmp_path / "a", "riskset.control_length_rule=at_index", f"riskset.control_mode={mode}"
    )
    whole = _stage_run(
        tmp_path / "b", "riskset.control_length_rule=whole_spell", f"riskset.control_mode={mode}"
    )
    cohort_ids = set(pl.read_parquet(tmp_path / "a" / "cohort.parquet")["spell_id"].to_list())
    controls_a = set(at_index["riskset.parquet"].filter(~pl.col("case"))["spell_id"].to_list())
    controls_b = set(whole["riskset.parquet"].filter(~pl.col("case"))["spell_id"].to_list())
    assert controls_b <= cohort_ids
    assert controls_a - cohort_ids  # short controls serve under at_index
    # the at-risk sets do not depend on the rule
    for mode in MODES:
        name = f"riskset_at_risk_{mode}.parquet"
        assert at_index[name].equals(whole[name])


populations = st.lists(
    st.tuples(
        st.integers(1, 12),  # lopnr
        st.integers(0, 70),  # start offset: three calendar months
        st.integers(1, 120),  # length
        st.one_of(st.none(), st.integers(-6, 60)),  # first GC001 day (< 0: before the start)
        st.sampled_from(["Kvinnor", "Män"]),
        st.booleans(),  # in the cohort (else a spell of the wider pool only)
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(
    rows=populations,
    k=st.integers(1, 4),
    mode=st.sampled_from(MODES),
    match=st.booleans(),
    end_day=st.one_of(st.none(), st.integers(0, 200)),
    reuse=st.booleans(),
)
def test_sets_agree_with_a_plain_eligibility_reference(rows, k, mode, match, end_day, reuse):
    rows = [(p, s, n, f if f is None or f < n else None, x, c) for p, s, n, f, x, c in rows]
    pool = cohort_from([r[:5] for r in rows])
    in_cohort = [i for i, r in enumerate(rows) if r[5]]
    cohort = pool.filter(pl.col("spell_id").is_in(in_cohort))
    match_on = ("sex",) if match else ()
    data_end = None if end_day is None else D0 + dt.timedelta(days=end_day)
    c = RiskSetConfig(k, mode, match_on, seed=2, reuse_controls=reuse)
    sets = build_riskset(cohort, c, pool, data_end)
    candidates = list(pool.iter_rows(named=True))
    by_id = {r["spell_id"]: r for r in candidates}
    assert (
        sets.filter("case")["spell_id"].to_list() == cohort.filter("treated")["spell_id"].to_list()
    )
    for _, members in sets.group_by("set_id"):
        case = by_id[members.filter("case")["spell_id"].item()]
        eligible = plain_eligible(case, candidates, mode, match_on, data_end)
        chosen = members.filter(~pl.col("case"))["spell_id"].to_list()
        assert set(chosen) <= eligible and len(set(chosen)) == len(chosen)
        assert members["n_eligible"].unique().to_list() == [len(eligible)]
        if reuse:
            assert len(chosen) == min(k, len(eligible))
        t = (case["first_gc001"] - case["start"]).days
        for control in members.filter(~pl.col("case")).iter_rows(named=True):
            assert control["index_date"] == by_id[control["spell_id"]]["start"] + dt.timedelta(t)
