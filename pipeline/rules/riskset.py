"""Risk-set sampling of controls for each GC001 case (analysis-spec.md §6.2).

For every case (a treated cohort spell, index day t = its first GC001, day 0 =
the spell's first day) up to k controls are drawn among the candidate spells
(the cohort's, or a wider pool the caller passes) that on day t are still on
sick leave and before the data end, started in the same calendar month (and
share the optional matching variables), belong to another person and are not
treated at the index: never treated (`never_treated`, the report's rule) or not
yet treated (`not_yet_treated`, textbook incidence-density sampling).

Each candidate has one number, `at_risk_until`: the last spell day on which it
can serve (its last sick day, the data end's spell day, and for a treated spell
the day before its first GC001, whichever is earliest). Eligible at t means
`at_risk_until >= t`, so after one sort per stratum the eligible candidates of
every case are a contiguous tail found by binary search, and k distinct
positions are drawn from it for all cases at once (rounds of redraws over the
few collisions, never a loop over cases). Controls recur across sets. Same
seed, input and config give the same sets.

A case with t < 0 (its GC001 before the spell's first day, allowed by
`exposure.pre_start_grace_days`) is matched on that same day: every candidate of
its stratum that is not treated on or before day t is eligible (no spell of
the stratum is on sick leave before day 0, the case's neither, and every one is
from day 0), and a control's index date is its start + t, before its spell
like the case's.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import polars as pl

MODES = ("never_treated", "not_yet_treated")
RISKSET_COLUMNS = [
    "set_id",
    "spell_id",
    "lopnr",
    "case",
    "index_date",
    "t",
    "n_eligible",
    "stratum",
    "k",
    "control_mode",
]


@dataclass(frozen=True)
class RiskSetConfig:
    """How the sets are drawn: controls per case, control mode (one of MODES), matching
    variables, seed and whether a control may serve several sets (config `riskset`)."""

    k: int
    control_mode: str
    match_on: tuple[str, ...]
    seed: int
    reuse_controls: bool = True


def _day0(column: str) -> pl.Expr:
    """Days from the spell's first day (0-based) to `column`."""
    return (pl.col(column).cast(pl.Date) - pl.col("start")).dt.total_days().cast(pl.Int64)


def stratum_key(match_on: tuple[str, ...]) -> pl.Expr:
    """Text key of a spell's stratum: its start month (YYYY-MM) and the matching variables."""
    extra = [pl.col(c).cast(pl.String).fill_null("") for c in match_on]
    return pl.concat_str([pl.col("start").dt.strftime("%Y-%m"), *extra], separator="|")


def cases_and_candidates(
    cohort: pl.DataFrame,
    conf: RiskSetConfig,
    candidates: pl.DataFrame | None = None,
    data_end: dt.date | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Cases (spell_id, lopnr, start, t, stratum): the treated spells of `cohort`; candidates
    (spell_id, lopnr, start, at_risk_until, stratum): the spells of `candidates` (default
    `cohort`) that can serve as controls. Days are 0-based spell days."""
    pool = cohort if candidates is None else candidates
    cases = (
        cohort.filter("treated")
        .with_columns(stratum_key(conf.match_on).alias("stratum"))
        .select("spell_id", "lopnr", "start", _day0("first_gc001").alias("t"), "stratum")
    )
    last_day = _day0("end")  # on sick leave through this day
    if data_end is not None:  # censored at the data end: not at risk after its last day
        data_end_day = (pl.lit(data_end) - pl.col("start")).dt.total_days().cast(pl.Int64)
        last_day = pl.min_horizontal(last_day, data_end_day)
    if conf.control_mode == "never_treated":
        pool = pool.filter(~pl.col("treated"))
        until = last_day
    else:  # a treated spell is a candidate until the day before its own first GC001
        until = (
            pl.when(pl.col("treated"))
            .then(pl.min_horizontal(last_day, _day0("first_gc001") - 1))
            .otherwise(last_day)
        )
    candidates = pool.with_columns(
        until.alias("at_risk_until"), stratum_key(conf.match_on).alias("stratum")
    ).select("spell_id", "lopnr", "start", "at_risk_until", "stratum")
    return cases.sort("spell_id"), candidates


def _key_span(until: np.ndarray, t: np.ndarray) -> tuple[int, int]:
    """(lowest day, width) of the search keys: every day d maps to d - lowest in [0, width)."""
    days = np.concatenate([until, t])
    if not days.size:
        return 0, 1
    low = int(days.min())
    return low, int(days.max()) - low + 1


def _draw_distinct(
    rng: np.random.Generator, size: np.ndarray, k: np.ndarray, forbidden: set[tuple[int, int]]
) -> tuple[np.ndarray, np.ndarray]:
    """For each row i, k[i] distinct offsets in [0, size[i]) avoiding `forbidden` (row, offset).

    Returns (row, offset) arrays. Redraws duplicates and forbidden offsets in rounds;
    the procedure treats all allowed offsets alike, so every k-subset is equally likely.
    """
    row = np.repeat(np.arange(len(size)), k)
    offset = np.zeros(len(row), dtype=np.int64)
    todo = np.ones(len(row), dtype=bool)
    while todo.any():
        offset[todo] = rng.integers(0, size[row[todo]])
        order = np.lexsort((np.arange(len(row)), offset, row))  # keep the first copy
        dup = np.zeros(len(row), dtype=bool)
        same = (row[order][1:] == row[order][:-1]) & (offset[order][1:] == offset[order][:-1])
        dup[order[1:][same]] = True
        if forbidden:
            pairs = zip(row, offset, strict=True)
            dup |= np.fromiter(((r, o) in forbidden for r, o in pairs), bool, len(row))
        todo = dup
    return row, offset


def build_riskset(
    cohort: pl.DataFrame,
    conf: RiskSetConfig,
    candidates: pl.DataFrame | None = None,
    data_end: dt.date | None = None,
) -> pl.DataFrame:
    """One row per member of every matched set (RISKSET_COLUMNS), cases first within a set.

    Cases are the treated spells of `cohort`; controls are drawn among the spells of
    `candidates` (default `cohort`) that are at risk on the case's spell day t, at risk
    ending at `data_end` (the last day of data; None = no cut)."""
    cases, candidates = cases_and_candidates(cohort, conf, candidates, data_end)
    strata = pl.concat([cases["stratum"], candidates["stratum"]]).unique().sort()
    stratum_id = {s: i for i, s in enumerate(strata.to_list())}
    as_id = pl.col("stratum").replace_strict(stratum_id, return_dtype=pl.Int64)
    cand = candidates.with_columns(as_id.alias("sid")).sort("sid", "at_risk_until", "spell_id")
    case = cases.with_columns(as_id.alias("sid"))

    # Eligible candidates of a case: the tail of its stratum with at_risk_until >= t.
    # Days are shifted to start at 0 so that a key never leaves its stratum's range
    # (t and at_risk_until may be negative: a GC001 before the spell's first day).
    until, t = cand["at_risk_until"].to_numpy(), case["t"].to_numpy()
    low, span = _key_span(until, t)
    cand_key = cand["sid"].to_numpy() * span + (until - low)
    case_sid = case["sid"].to_numpy()
    lo = np.searchsorted(cand_key, case_sid * span + (t - low), side="left")
    hi = np.searchsorted(cand["sid"].to_numpy(), case_sid, side="right")
    size = np.maximum(hi - lo, 0)

    # Candidates of the case's own person are never eligible (rare: not_yet_treated only).
    cand_pos = cand.with_row_index("pos").select("pos", "lopnr", "sid", "at_risk_until")
    own = _own_person_offsets(case, cand_pos, lo)
    n_eligible = size - np.bincount(own["row"].to_numpy(), minlength=len(size))
    take = np.minimum(conf.k, n_eligible)

    rng = np.random.default_rng(conf.seed)
    if not conf.reuse_controls:
        own_pos = lo[own["row"].to_numpy()] + own["offset"].to_numpy()
        row, pos = _draw_without_reuse(
            rng, lo, size, conf.k, t, own["row"].to_numpy(), own_pos, len(cand)
        )
        return _assemble(case, cand, t, n_eligible, row, pos, conf)
    all_rows = np.flatnonzero(take == n_eligible)  # take every eligible candidate
    some_rows = np.flatnonzero(take < n_eligible)
    forbidden = {(r, o) for r, o in own.iter_rows()}
    row_all = np.repeat(all_rows, size[all_rows])
    off_all = np.arange(len(row_all)) - np.repeat(
        np.cumsum(size[all_rows]) - size[all_rows], size[all_rows]
    )
    keep = np.ones(len(row_all), dtype=bool)
    if forbidden:
        pairs = zip(row_all, off_all, strict=True)
        keep = np.fromiter(((r, o) not in forbidden for r, o in pairs), bool, len(row_all))
    remap = {r: i for i, r in enumerate(some_rows)}
    forbidden_some = {(remap[r], o) for r, o in forbidden if r in remap}
    row_some, off_some = _draw_distinct(rng, size[some_rows], take[some_rows], forbidden_some)
    row = np.concatenate([row_all[keep], some_rows[row_some]])
    pos = lo[row] + np.concatenate([off_all[keep], off_some])

    return _assemble(case, cand, t, n_eligible, row, pos, conf)


def _assemble(
    case: pl.DataFrame,
    cand: pl.DataFrame,
    t: np.ndarray,
    n_eligible: np.ndarray,
    row: np.ndarray,
    pos: np.ndarray,
    conf: RiskSetConfig,
) -> pl.DataFrame:
    """The riskset frame from the cases and the drawn (case row, candidate position) pairs."""
    controls = pl.DataFrame(
        {
            "set_id": row.astype(np.int64),
            "spell_id": cand["spell_id"].to_numpy()[pos],
            "lopnr": cand["lopnr"].to_numpy()[pos],
            "case": np.zeros(len(row), dtype=bool),
            "index_date": cand["start"].to_numpy()[pos] + t[row].astype("timedelta64[D]"),
        }
    )
    cases_out = pl.DataFrame(
        {
            "set_id": np.arange(case.height, dtype=np.int64),
            "spell_id": case["spell_id"].to_numpy(),
            "lopnr": case["lopnr"].to_numpy(),
            "case": np.ones(case.height, dtype=bool),
            "index_date": case["start"].to_numpy() + t.astype("timedelta64[D]"),
        }
    )
    per_set = pl.DataFrame(
        {
            "set_id": np.arange(case.height, dtype=np.int64),
            "t": t.astype(np.int32),
            "n_eligible": n_eligible.astype(np.int32),
            "stratum": case["stratum"],
        }
    )
    return (
        pl.concat([cases_out, controls])
        .with_columns(pl.col("index_date").cast(pl.Date))
        .join(per_set, on="set_id")
        .with_columns(
            pl.lit(conf.k, pl.Int32).alias("k"), pl.lit(conf.control_mode).alias("control_mode")
        )
        .sort("set_id", pl.col("case"), "spell_id", descending=[False, True, False])
        .select(RISKSET_COLUMNS)
    )


def _draw_without_reuse(
    rng: np.random.Generator,
    lo: np.ndarray,
    size: np.ndarray,
    k: int,
    t: np.ndarray,
    own_row: np.ndarray,
    own_pos: np.ndarray,
    n_candidates: int,
) -> tuple[np.ndarray, np.ndarray]:
    """(case row, candidate position) pairs when a control may serve one set only.

    In rounds, every case still short of k draws one control uniformly among the
    unused eligible candidates (the j-th unused one, found by a search in the running
    count of unused candidates, so there is no rejection loop); when two cases draw
    the same control the one with the earlier index day (then the lower set id) gets
    it. Candidates of the case's own person are redrawn in the next round.
    """
    used = np.zeros(n_candidates, dtype=bool)
    taken = np.zeros(len(size), dtype=np.int64)
    priority = np.lexsort((np.arange(len(size)), t))
    rank = np.empty(len(size), dtype=np.int64)
    rank[priority] = np.arange(len(size))
    own = set(zip(own_row.tolist(), own_pos.tolist(), strict=True))
    rows, positions = [], []
    active = np.arange(len(size))
    while True:
        unused_cum = np.concatenate([[0], np.cumsum(~used)])
        free = unused_cum[lo + size] - unused_cum[lo]
        own_free = np.bincount(own_row[~used[own_pos]], minlength=len(size)) if own else 0
        available = free - own_free
        active = active[(taken[active] < k) & (available[active] > 0)]
        if not active.size:
            break
        j = rng.integers(0, free[active])  # the j-th unused candidate of the case's tail
        draw = np.searchsorted(unused_cum, unused_cum[lo[active]] + j + 1, side="left") - 1
        ok = (
            np.array([(r, p) not in own for r, p in zip(active, draw, strict=True)])
            if own
            else (np.ones(len(active), dtype=bool))
        )
        cand_rows, cand_pos = active[ok], draw[ok]
        if not cand_rows.size:  # every draw hit the case's own person: draw again
            continue
        order = np.lexsort((rank[cand_rows], cand_pos))
        first = np.r_[True, cand_pos[order][1:] != cand_pos[order][:-1]]
        win_rows, win_pos = cand_rows[order][first], cand_pos[order][first]
        used[win_pos] = True
        taken[win_rows] += 1
        rows.append(win_rows)
        positions.append(win_pos)
    if not rows:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(rows), np.concatenate(positions)


def _own_person_offsets(case: pl.DataFrame, cand_pos: pl.DataFrame, lo: np.ndarray) -> pl.DataFrame:
    """(row, offset) of eligible candidates that belong to the case's own person."""
    lo_of_row = pl.DataFrame(
        {"row": np.arange(len(lo), dtype=np.uint32), "lo": lo.astype(np.int64)}
    )
    return (
        case.with_row_index("row")
        .join(cand_pos, on=["lopnr", "sid"])
        .filter(pl.col("at_risk_until") >= pl.col("t"))
        .join(lo_of_row, on="row")
        .select(
            pl.col("row").cast(pl.Int64),
            (pl.col("pos").cast(pl.Int64) - pl.col("lo")).alias("offset"),
        )
    )
