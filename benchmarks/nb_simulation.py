"""Simulation study of the sick-days NB (issue 15 item 9): bias and CI coverage over seeds.

For each synthetic seed (`synth.seed`), with the planted extra-days effect on (the
default) and off (0), the stages synth..cohort run once in a temporary directory,
then riskset + nb_model once per risk-set variant (`VARIANTS`: control mode
`never_treated` or `not_yet_treated`, matched on diagnosis group or not, short sets
filled or not); the report design is taken from the first variant's nb_model run (it
does not use the risk sets). Each shown point of `nb_extra_days.csv` (model `nb2`
when the column exists) is compared with the written truth of its design's treated rows
(`pipeline.rules.nb_truth`): `truth` = the mean over cases within +-30 prior days
of the point (`truth_summary`'s "at p"), `truth_local` = the local-linear value at
the point (`truth_at`); `truth_contrast` = the cases' band mean minus the control
rows' (whose persons may be treated later, e.g. a `not_yet_treated` control's own
spell), the truth of the case - control contrast the design compares; with the
effect off all are 0. With the effect on, `null_world` refits each design on the
same rows with every row's planted days taken out of its after_days (`null_world()`):
the estimate minus it is the effect the model recovers on that very sample, and it
splits the bias into the null world's deviation (design and model with nothing to
find) and the recovery error against the contrast truth. The temporary directory is
deleted after each seed. One CSV row per seed x effect x design x point
(appended as it goes, so an interrupted run keeps its seeds), then a summary:

    .venv/bin/python benchmarks/nb_simulation.py --seeds 100 --persons 50000 \
        --out /tmp/nb_simulation.csv
    .venv/bin/python benchmarks/nb_simulation.py --summarise /tmp/nb_simulation.csv
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import shutil
import tempfile
import time
from pathlib import Path

import polars as pl

from pipeline.__main__ import main as cli
from pipeline.core import config
from pipeline.rules.nb_truth import true_extra_days, truth_at, truth_summary
from pipeline.stages.nb_model import NBConfig
from pipeline.stages.nb_model.fit import fit_design

FIRST_SEED = 20260625  # synth.seed's default: seed 0 of the study is the default run's
# nb.extra_days_at plus 15 and 30 (inside the low prior-days band)
POINTS = (0.0, 15.0, 30.0, 90.0, 180.0, 365.0)
WINDOW = 365  # nb.window_days
# The risk-set variants compared: label -> overrides (control mode and matching set
# explicitly, so the study does not follow the configured default).
VARIANTS = {
    "riskset never_treated": (
        "riskset.control_mode=never_treated",
        "riskset.match_on=[]",
        "nb.fill_short_sets=false",
    ),
    "riskset not_yet_treated": (
        "riskset.control_mode=not_yet_treated",
        "riskset.match_on=[]",
        "nb.fill_short_sets=false",
    ),
    "riskset not_yet_treated, diagnosis matched": (
        "riskset.control_mode=not_yet_treated",
        "riskset.match_on=[diagnosis_group]",
        "nb.fill_short_sets=false",
    ),
    "riskset not_yet_treated, diagnosis matched, short sets filled": (  # the default
        "riskset.control_mode=not_yet_treated",
        "riskset.match_on=[diagnosis_group]",
        "nb.fill_short_sets=true",
    ),
    "riskset not_yet_treated, diagnosis matched, log1p": (
        "riskset.control_mode=not_yet_treated",
        "riskset.match_on=[diagnosis_group]",
        "nb.fill_short_sets=false",
        "nb.prior_form=log1p",
    ),
    "riskset not_yet_treated, diagnosis matched, t adjusted": (
        "riskset.control_mode=not_yet_treated",
        "riskset.match_on=[diagnosis_group]",
        "nb.fill_short_sets=false",
        "nb.riskset_t_bands=[30,90,180,365,730]",
    ),
}
REFIT = ("nb.prior_form", "nb.riskset_t_bands")  # settings of the fit, not of the rows
EFFECT_OFF = ("synth.effect.extra_days_intercept=0", "synth.effect.extra_days_slope_per_180=0")


def run_stages(stages: tuple[str, ...], overrides: list[str]) -> float:
    """Run `stages` through the CLI entry with `overrides`; returns wall seconds."""
    t0 = time.perf_counter()
    for stage in stages:
        if cli([stage, *overrides]) != 0:
            raise RuntimeError(f"stage {stage} failed with {overrides}")
    return time.perf_counter() - t0


def stage_points(base: Path, design: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """`design`'s points (model nb2) of base's nb_extra_days.csv and its model rows."""
    table = pl.read_csv(base / "outputs" / "results" / "nb_extra_days.csv")
    if "model" in table.columns:
        table = table.filter(pl.col("model") == "nb2")
    data = pl.read_parquet(base / "outputs" / "models" / "nb_data.parquet")
    return table.filter(pl.col("design") == design), data.filter(pl.col("design") == design)


def design_rows(
    points: pl.DataFrame, rows: pl.DataFrame, end: dt.date, truth: pl.DataFrame, label: str
) -> pl.DataFrame:
    """One row per point of a design's extra days with its written truths (days); grain:
    design x prior-days point. `rows` are the design's model rows, `end` the data end."""
    table = points
    rows = true_extra_days(rows, truth, WINDOW, end)
    window = truth_summary(rows, POINTS)
    at = dict(zip(window["what"], window["true_extra_days"], strict=True))
    near = dict(zip(window["what"], window["n"], strict=True))
    contrast = dict(zip(window["what"], window["contrast"], strict=True))
    local = truth_at(rows, POINTS)
    local_controls = truth_at(rows, POINTS, treated=False)
    local_contrast = {
        p: None if None in (local[p], local_controls[p]) else local[p] - local_controls[p]
        for p in POINTS
    }
    low = rows.filter(pl.col("prior_days") <= 30)
    diff = (
        low.filter(pl.col("treated"))["after_days"].mean()
        - low.filter(~pl.col("treated"))["after_days"].mean()
    )
    return table.select(
        pl.lit(label).alias("design"),
        "prior_days",
        "extra_days",
        "ci_low",
        "ci_high",
        "extrapolated",
        pl.col("prior_days").map_elements(lambda p: at[f"at {p:g}"], pl.Float64).alias("truth"),
        pl.col("prior_days").map_elements(lambda p: near[f"at {p:g}"], pl.Int64).alias("n_near"),
        pl.col("prior_days").map_elements(local.get, pl.Float64).alias("truth_local"),
        pl.col("prior_days")
        .map_elements(lambda p: contrast[f"at {p:g}"], pl.Float64)
        .alias("truth_contrast"),
        pl.col("prior_days")
        .map_elements(local_contrast.get, pl.Float64)
        .alias("truth_contrast_local"),
        pl.lit(diff).alias("naive_diff_0_30"),
        pl.lit(rows.height).alias("n_rows"),
        pl.lit((rows["prior_days"] == 0).mean()).alias("share_prior_0"),
    )


def null_world(
    rows: pl.DataFrame, end: dt.date, truth: pl.DataFrame, overrides: list[str]
) -> pl.DataFrame:
    """`design`'s extra days (prior_days, null_world) refitted on the same rows with every
    row's planted days taken out of its after_days: the estimate had no one been treated,
    the persons, spells and their scheduling unchanged (the generator never moves a later
    spell for a treatment). Estimate - null_world is then the effect the model recovers
    on this very sample; null_world itself is what the design and model give with no
    effect (days). `rows` are one design's model rows (stage_points), `end` the data end."""
    conf = NBConfig.from_config(config.compose(overrides))
    design = rows["design"][0]
    rows = true_extra_days(rows, truth, conf.window_days, end)
    if conf.truncation != "exclude":
        raise ValueError("null_world needs nb.truncation=exclude (complete windows)")
    rows = rows.with_columns(pl.col("after_days") - pl.col("true_extra_days"))
    points = fit_design(rows, design, conf, [], None)["points"]
    return points.select("prior_days", pl.col("extra_days").alias("null_world"))


def seed_overrides(base: Path, seed: int, persons: int) -> list[str]:
    """Overrides of one seed's run: `persons` at size small, every file under `base`."""
    return [
        "synth.size=small",
        f"synth.sizes.small={persons}",
        f"synth.seed={seed}",
        # the sampler's draws vary with the seed too (seed + 1 is the default run's):
        # with one riskset.seed for all seeds its offsets hardly change between
        # synthetic draws of the same size, so its error would not average out
        f"riskset.seed={seed + 1}",
        f"synth.out_dir={base}/delivery",
        f"synth.truth_dir={base}/truth",
        f"paths.staged={base}/staged",
        f"paths.quarantine={base}/quarantine",
        f"paths.outputs={base}/outputs",
    ]


def one_seed(
    seed: int, persons: int, effect: str, variants: tuple[str, ...] = tuple(VARIANTS)
) -> pl.DataFrame:
    """The designs' points (the report's with the first of `variants`, the risk-set
    `variants`) for one seed and effect setting, with run times (s)."""
    base = Path(tempfile.mkdtemp(prefix=f"nbsim_{seed}_"))
    try:
        common = [
            *seed_overrides(base, seed, persons),
            f"nb.extra_days_at=[{','.join(f'{p:g}' for p in POINTS)}]",
            *(EFFECT_OFF if effect == "off" else ()),
        ]
        prep = run_stages(("synth", "stage", "spells", "exposure", "cohort"), common)
        truth = pl.read_parquet(base / "truth" / "spells.parquet")
        end = pl.read_parquet(base / "staged" / "sjukpenning.parquet")["tom_datum"].max()
        parts = []
        for label in variants:
            over = [*common, *VARIANTS[label]]
            # a variant's fit settings (REFIT) are refitted on the stage's risk-set rows,
            # so the report design (which may not fit with them) cannot stop the stage
            stage_over = [*common, *(o for o in VARIANTS[label] if not o.startswith(REFIT))]
            secs = run_stages(("riskset",), stage_over)
            t0 = time.perf_counter()
            run_stages(("nb_model",), stage_over)
            points, rows = stage_points(base, "riskset")
            if stage_over != over:
                conf = NBConfig.from_config(config.compose(over))
                points = fit_design(rows, "riskset", conf, [], None)["points"]
            nb_secs = time.perf_counter() - t0
            got = design_rows(points, rows, end, truth, label)
            if effect == "on":  # with the effect off the estimate is the null world
                got = got.join(null_world(rows, end, truth, over), on="prior_days", how="left")
            parts.append(got.with_columns(pl.lit(secs + nb_secs).alias("seconds")))
            if label == variants[0]:
                points, rows = stage_points(base, "report")
                rep = design_rows(points, rows, end, truth, "report")
                if effect == "on":
                    rep = rep.join(null_world(rows, end, truth, over), on="prior_days", how="left")
                parts.append(rep.with_columns(pl.lit(nb_secs).alias("seconds")))
        out = pl.concat(parts)
        return out.with_columns(
            pl.lit(seed).alias("seed"),
            pl.lit(effect).alias("effect"),
            pl.lit(persons).alias("persons"),
            pl.lit(prep).alias("prep_seconds"),
        )
    finally:
        shutil.rmtree(base, ignore_errors=True)


def summarise(runs: pl.DataFrame) -> pl.DataFrame:
    """Per effect x design x point over the seeds: shown seeds, mean estimate, mean
    truths, mean bias (days), empirical SD, mean CI half-width, coverage (%) of each
    seed's truth and of the population truth (the mean over seeds), seconds."""
    truth = pl.when(pl.col("effect") == "off").then(0.0)
    runs = runs.with_columns(
        truth.otherwise(pl.col("truth")).alias("truth"),
        truth.otherwise(pl.col("truth_local")).alias("truth_local"),
        truth.otherwise(pl.col("truth_contrast")).alias("truth_contrast"),
    )
    if "null_world" not in runs.columns:  # runs written before the paired refit
        runs = runs.with_columns(pl.lit(None, pl.Float64).alias("null_world"))
    recovered = pl.col("extra_days") - pl.col("null_world") - pl.col("truth_contrast")
    # the population truth (Morris, White & Crowther 2019: one estimand for all
    # repetitions): the mean over seeds of the written truth; a seed's own truth is the
    # mean of its few cases near the point and varies between seeds (SD 5 days at 365)
    shown = runs.filter(~pl.col("extrapolated")).with_columns(
        pl.col("truth").mean().over("effect", "design", "prior_days").alias("truth_population")
    )
    return (
        shown.group_by("effect", "design", "prior_days")
        .agg(
            pl.len().alias("seeds"),
            pl.col("extra_days").mean().alias("mean_est"),
            pl.col("truth").mean().alias("mean_truth"),
            (pl.col("extra_days") - pl.col("truth")).mean().alias("bias"),
            ((pl.col("extra_days") - pl.col("truth")).std() / pl.len().sqrt()).alias("bias_se"),
            (pl.col("truth").is_between(pl.col("ci_low"), pl.col("ci_high")).mean() * 100).alias(
                "coverage"
            ),
            pl.col("truth").std().alias("sd_truth"),
            (
                pl.col("truth_population").is_between(pl.col("ci_low"), pl.col("ci_high")).mean()
                * 100
            ).alias("coverage_population"),
            pl.col("truth_local").mean().alias("mean_truth_local"),
            (pl.col("extra_days") - pl.col("truth_local")).mean().alias("bias_local"),
            ((pl.col("extra_days") - pl.col("truth_local")).std() / pl.len().sqrt()).alias(
                "bias_local_se"
            ),
            (
                pl.col("truth_local").is_between(pl.col("ci_low"), pl.col("ci_high")).mean() * 100
            ).alias("coverage_local"),
            pl.col("truth_contrast").mean().alias("mean_truth_contrast"),
            (pl.col("extra_days") - pl.col("truth_contrast")).mean().alias("bias_contrast"),
            ((pl.col("extra_days") - pl.col("truth_contrast")).std() / pl.len().sqrt()).alias(
                "bias_contrast_se"
            ),
            (
                pl.col("truth_contrast").is_between(pl.col("ci_low"), pl.col("ci_high")).mean()
                * 100
            ).alias("coverage_contrast"),
            pl.col("null_world").count().alias("paired_seeds"),
            pl.col("null_world").mean().alias("null_world"),
            (pl.col("null_world").std() / pl.col("null_world").count().sqrt()).alias(
                "null_world_se"
            ),
            recovered.mean().alias("recovery_error"),
            (recovered.std() / recovered.count().sqrt()).alias("recovery_error_se"),
            pl.col("extra_days").std().alias("sd_est"),
            ((pl.col("ci_high") - pl.col("ci_low")) / 2).mean().alias("half_width"),
            pl.col("seconds").mean().alias("seconds"),
        )
        .sort("effect", "design", "prior_days", descending=[True, False, False])
    )


def markdown(summary: pl.DataFrame) -> str:
    """The summary as a markdown table: one line per design x point, the effect on and
    off side by side (days; coverage in %; seconds per riskset + nb_model run)."""
    on = summary.filter(pl.col("effect") == "on")
    kept = ("seeds", "bias", "bias_se", "coverage")
    off = summary.filter(pl.col("effect") == "off").select(
        "design", "prior_days", *[pl.col(c).alias(f"{c}_off") for c in kept]
    )
    table = on.join(off, on=["design", "prior_days"], how="full", coalesce=True)
    lines = [
        "| design | prior days | seeds (on/off) | truth (local) | SD of seeds' truths "
        "| mean estimate | bias ± MC se | vs local truth: bias ± MC se | coverage % "
        "| coverage of mean truth % "
        "| SD of estimates | mean CI half-width | no effect: bias ± MC se "
        "| no effect: coverage % | contrast truth | vs contrast: bias ± MC se "
        "| vs contrast: coverage % | s per fit |",
        "|" + " --- |" * 18,
    ]

    def num(v: float | None, fmt: str) -> str:
        return "–" if v is None else format(v, fmt)

    for r in table.sort("design", "prior_days").iter_rows(named=True):
        lines.append(
            f"| {r['design']} | {r['prior_days']:g} | {r['seeds'] or 0}/{r['seeds_off'] or 0} "
            f"| {num(r['mean_truth'], '.1f')} ({num(r['mean_truth_local'], '.1f')}) "
            f"| {num(r['sd_truth'], '.1f')} "
            f"| {num(r['mean_est'], '.1f')} | {num(r['bias'], '+.1f')} ± "
            f"{num(r['bias_se'], '.1f')} | {num(r['bias_local'], '+.1f')} ± "
            f"{num(r['bias_local_se'], '.1f')} "
            f"| {num(r['coverage'], '.0f')} | {num(r['coverage_population'], '.0f')} "
            f"| {num(r['sd_est'], '.1f')} "
            f"| {num(r['half_width'], '.1f')} | {num(r['bias_off'], '+.1f')} ± "
            f"{num(r['bias_se_off'], '.1f')} | {num(r['coverage_off'], '.0f')} "
            f"| {num(r['mean_truth_contrast'], '.1f')} | {num(r['bias_contrast'], '+.1f')} ± "
            f"{num(r['bias_contrast_se'], '.1f')} | {num(r['coverage_contrast'], '.0f')} "
            f"| {num(r['seconds'], '.0f')} |"
        )
    paired = on.filter(pl.col("paired_seeds") > 0).sort("design", "prior_days")
    if paired.height:
        lines += [
            "",
            "| design | prior days | paired seeds | null world: mean ± MC se "
            "| recovered − contrast truth: mean ± MC se |",
            "|" + " --- |" * 5,
        ]
        for r in paired.iter_rows(named=True):
            lines.append(
                f"| {r['design']} | {r['prior_days']:g} | {r['paired_seeds']} "
                f"| {num(r['null_world'], '+.1f')} ± {num(r['null_world_se'], '.1f')} "
                f"| {num(r['recovery_error'], '+.1f')} ± {num(r['recovery_error_se'], '.1f')} |"
            )
    return "\n".join(lines)


def parse() -> argparse.Namespace:
    """Command-line arguments."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=100)
    p.add_argument("--persons", type=int, default=50_000)
    p.add_argument("--first-seed", type=int, default=FIRST_SEED)
    p.add_argument("--effects", default="on,off")
    p.add_argument(
        "--variants",
        default=";".join(VARIANTS),
        help="labels of VARIANTS, ;-separated (the report design runs with the first "
        "one given only; a seed x effect already in --out is skipped whatever its "
        "variants, so give each variant set its own --out)",
    )
    p.add_argument("--out", type=Path, default=Path("nb_simulation.csv"))
    p.add_argument("--summarise", type=Path, help="only summarise this CSV of runs")
    return p.parse_args()


if __name__ == "__main__":
    args = parse()
    logging.disable(logging.INFO)
    if args.summarise is None:
        done = pl.read_csv(args.out) if args.out.exists() else None
        for i in range(args.seeds):
            seed = args.first_seed + i
            for effect in args.effects.split(","):
                if (
                    done is not None
                    and done.filter((pl.col("seed") == seed) & (pl.col("effect") == effect)).height
                ):
                    continue
                t0 = time.perf_counter()
                got = one_seed(seed, args.persons, effect, tuple(args.variants.split(";")))
                done = got if done is None else pl.concat([done, got], how="diagonal_relaxed")
                done.write_csv(args.out)
                print(f"seed {seed} effect {effect}: {time.perf_counter() - t0:.0f} s", flush=True)
    print(markdown(summarise(pl.read_csv(args.summarise or args.out))))
