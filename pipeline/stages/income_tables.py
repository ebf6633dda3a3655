"""`income_tables` stage: Tables B4, B5, B6 and 3, Figures 13-14 (analysis-spec.md §4.5-4.10).

Cells are built tidy (table, block, row, length class, group; n, count, percent,
Wilson 95 % CI), compared treated vs control (unadjusted two-proportion z, and
the adjusted model's p-value from `income_models`), starred as the report does
(`**` p < 0.01, `***` p < 0.001) by `significance.method`, suppressed, and
written tidy and in the published layout. `income_directions.csv` states the
direction of every treated-vs-control difference, with its CI and p (§10 item 40).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import polars as pl

from pipeline.core import config, io
from pipeline.report.figures import write_figure
from pipeline.report.formatting import ALPHA, whole_percent
from pipeline.report.labels import ALL_LENGTHS, LENGTH_CLASSES
from pipeline.rules.income_cells import ModelSpec, model_rows
from pipeline.stats.disclosure import suppressed_cells
from pipeline.stats.regression import newcombe_diff_ci, stars, two_proportion_z, wilson_ci

log = logging.getLogger(__name__)

GROUPS = (("Insats", True), ("Kontroll", False))
WINDOW_LABEL = "<{} mån"
B6_INCOME = ("Utan inkomst före", "Någon inkomst före")
SHOWN_COLUMNS = ("count", "percent", "ci_low", "ci_high", "p_unadjusted", "p_adjusted", "p_value")
DIRECTION_SCHEMA = {
    "table": pl.String,
    "block": pl.String,
    "row": pl.String,
    "length_class": pl.String,
    "income": pl.String,
    "outcome": pl.String,
    "model": pl.String,
    "n_treated": pl.Int64,
    "n_control": pl.Int64,
    "percent_treated": pl.Float64,
    "percent_control": pl.Float64,
    "diff_pp": pl.Float64,
    "diff_ci_low": pl.Float64,
    "diff_ci_high": pl.Float64,
    "p_unadjusted": pl.Float64,
    "ame_pp": pl.Float64,
    "ame_ci_low": pl.Float64,
    "ame_ci_high": pl.Float64,
    "p_adjusted": pl.Float64,
    "p_value": pl.Float64,
    "stars": pl.String,
    "direction": pl.String,
    "significant_for": pl.String,
    "suppressed": pl.Boolean,
}


def share_cells(
    rows: pl.DataFrame, outcome: str, table: str, block: str, row: str, spec: ModelSpec
) -> Iterator[dict[str, Any]]:
    """One cell per group: n (non-missing outcome), count, percent and Wilson CI (percent)."""
    counted = {}
    for label, treated in GROUPS:
        values = rows.filter(pl.col("treated") == treated)[outcome].drop_nulls()
        counted[label] = (int(values.sum()), values.len())
    (x1, n1), (x2, n2) = counted["Insats"], counted["Kontroll"]
    p_unadjusted = two_proportion_z(x1, n1, x2, n2) if n1 and n2 else math.nan
    for label, _ in GROUPS:
        count, n = counted[label]
        lo, hi = wilson_ci(count, n) if n else (math.nan, math.nan)
        yield {
            "table": table,
            "block": block,
            "row": row,
            "length_class": spec.length_class,
            "group": label,
            "outcome": outcome,
            "model": spec.name,
            "n": n,
            "count": count,
            "percent": 100 * count / n if n else math.nan,
            "ci_low": 100 * lo,
            "ci_high": 100 * hi,
            "p_unadjusted": p_unadjusted,
        }


def n_cells(
    rows: pl.DataFrame, table: str, block: str, spec: ModelSpec
) -> Iterator[dict[str, Any]]:
    """The block's `n` row: persons per group in the block's population."""
    for label, treated in GROUPS:
        n = rows.filter(pl.col("treated") == treated).height
        yield {
            "table": table,
            "block": block,
            "row": "n",
            "length_class": spec.length_class,
            "group": label,
            "outcome": None,
            "model": None,
            "n": n,
            "count": n,
        }


def table_layout(windows: tuple[int, ...]) -> list[tuple[str, str, str, list[tuple[str, str]]]]:
    """(table, block, income group, [(row label, outcome)]) in printed order (§4.5-4.9)."""
    any_rows = [(WINDOW_LABEL.format(w), f"any_income_{w}") for w in windows]
    regained_rows = [(WINDOW_LABEL.format(w), f"regained_{w}") for w in windows]
    any_after = ("Någon inkomst efter", "durable_any")
    regained_after = ("Återfår tidigare inkomst efter", "durable_regained")
    return [
        ("B4", "Någon inkomst", "income_before", any_rows),
        ("B4", "Tidigare inkomstnivå", "income_before", regained_rows),
        ("B5", "Någon inkomst", "no_income_before", any_rows),
        ("Tabell 3", "Haft inkomst före", "income_before", [any_after, regained_after]),
        ("Tabell 3", "Ingen inkomst före", "no_income_before", [any_after]),
    ]


def _label(flag: str, yes: str, no: str) -> pl.Expr:
    return pl.when(pl.col(flag)).then(pl.lit(yes)).otherwise(pl.lit(no))


def b4_b5_table3(outcomes: pl.DataFrame, windows: tuple[int, ...]) -> pl.DataFrame:
    """Tidy cells of Tables B4, B5 and 3 (§4.5, §4.6, §4.9)."""
    cells: list[dict[str, Any]] = []
    for length in LENGTH_CLASSES:
        layout = table_layout(windows)
        for table, block, group, rows_of_block in layout:
            model_table = "Table 3" if table == "Tabell 3" else "B4/B5"
            first = ModelSpec(model_table, group, length, rows_of_block[0][1])
            population = model_rows(outcomes, first)
            if block == "Tidigare inkomstnivå":  # its own n: spells where regained applies
                population = population.filter(pl.col("regained_applies"))
            cells += n_cells(population, table, block, first)
            for label, outcome in rows_of_block:
                spec = ModelSpec(model_table, group, length, outcome)
                cells += share_cells(population, outcome, table, block, label, spec)
    return pl.DataFrame(cells, infer_schema_length=None)


def add_significance(cells: pl.DataFrame, models: pl.DataFrame, method: str) -> pl.DataFrame:
    """Cells with `p_adjusted` (the model's treatment term), `p_value` (by `method`) and `stars`
    on the treated cell."""
    adjusted = models.filter(pl.col("term") == "treated").select(
        "model", pl.col("p_value").alias("p_adjusted")
    )
    out = cells.join(adjusted, on="model", how="left")
    p = pl.col("p_adjusted") if method == "adjusted_logit" else pl.col("p_unadjusted")
    return out.with_columns(p.alias("p_value")).with_columns(
        pl.when((pl.col("group") == "Insats") & pl.col("p_value").is_not_null())
        .then(pl.col("p_value").map_elements(stars, return_dtype=pl.String))
        .otherwise(pl.lit(""))
        .alias("stars")
    )


def suppress_income_cells(cells: pl.DataFrame, min_count: int) -> pl.DataFrame:
    """Cells with `suppressed`: counts and n's below `min_count`, plus complements so that
    `<2 år + 2+ år = Alla` cannot reveal them. A hidden cell shows no count, share or CI;
    when a block's n is hidden, all its shares are too (count / share would give n back);
    when either cell of a treated-vs-control pair is hidden, neither shows the test's p."""
    indexed = cells.with_row_index("cell")
    constraints = []
    for _, part in indexed.group_by(["table", "block", "row", "group"], maintain_order=True):
        by_length = {r["length_class"]: r["cell"] for r in part.iter_rows(named=True)}
        if set(by_length) == set(LENGTH_CLASSES):
            constraints.append((by_length[ALL_LENGTHS], [by_length["<2 år"], by_length["2+ år"]]))
    hidden = suppressed_cells(indexed["count"].to_list(), constraints, min_count)
    small_n = (indexed["n"] < min_count).to_list()
    mask = pl.Series("suppressed", [h or s for h, s in zip(hidden, small_n, strict=True)])
    n_hidden = (
        (pl.col("suppressed") & (pl.col("row") == "n"))
        .any()
        .over("table", "block", "length_class", "group")
    )
    flagged = (
        indexed.drop("cell")
        .with_columns(mask)
        .with_columns(n_hidden.alias("n_hidden"))
        .with_columns((pl.col("suppressed") | pl.col("n_hidden")).alias("suppressed"))
    )
    # a test of treated vs control, shown on either cell, narrows the other cell's count
    pair_hidden = pl.col("suppressed").any().over("table", "block", "row", "length_class")
    tests = ("p_unadjusted", "p_adjusted", "p_value")
    shown = [
        pl.when(~pl.col("pair_hidden" if c in tests else "suppressed")).then(pl.col(c)).alias(c)
        for c in SHOWN_COLUMNS
    ]
    return (
        flagged.with_columns(pair_hidden.alias("pair_hidden"))
        .with_columns(
            *shown,
            pl.when(~pl.col("n_hidden")).then(pl.col("n")).alias("n"),
            pl.when(~pl.col("pair_hidden"))
            .then(pl.col("stars"))
            .otherwise(pl.lit(""))
            .alias("stars"),
        )
        .drop("n_hidden", "pair_hidden")
    )


def printed_layout(cells: pl.DataFrame, table: str) -> pl.DataFrame:
    """Published layout of one table: block, row, then `count (pct)` per length class x group."""
    text = (
        pl.when(pl.col("suppressed"))
        .then(pl.lit(".."))
        .when(pl.col("row") == "n")
        .then(pl.col("n").cast(pl.String))
        .otherwise(
            pl.format(
                "{} ({}){}",
                pl.col("count"),
                whole_percent(),
                pl.col("stars"),
            )
        )
    )
    part = cells.filter(pl.col("table") == table).with_columns(
        text.alias("text"), pl.format("{} {}", "length_class", "group").alias("column")
    )
    order = part.select("block", "row").unique(maintain_order=True)
    wide = part.pivot(on="column", index=["block", "row"], values="text")
    columns = [f"{length} {g}" for length in LENGTH_CLASSES for g, _ in GROUPS]
    return order.join(wide, on=["block", "row"], how="left", maintain_order="left").select(
        "block", "row", *columns
    )


def table_b6(outcomes: pl.DataFrame, codes: Any, min_count: int) -> pl.DataFrame:
    """Table B6 (§4.10): background of B4/B5's persons, without / with income before x group;
    percent of each block's non-missing total; small counts suppressed with a complement."""
    labels = {str(g["key"]): str(g["label_b6"]) for g in codes.diagnosis_groups}
    sex_b6 = {"Kvinnor": "Kvinna", "Män": "Man"}
    population = pl.col("in_income_tables") & pl.col("income_before").is_not_null()
    as_b6 = {"default": None, "return_dtype": pl.String}
    rows = outcomes.filter(population).with_columns(
        pl.col("sex").replace_strict(sex_b6, **as_b6).alias("Kön"),
        pl.format("{} år", pl.col("age_band")).alias("Ålder"),
        pl.col("diagnosis_group").replace_strict(labels, **as_b6).alias("Diagnos"),
        pl.col("education_group").alias("Utbildning"),
        _label("income_before", "Någon inkomst före", "Utan inkomst före").alias("income"),
        _label("treated", "Insats", "Kontroll").alias("group"),
    )
    categories = {
        "Kön": list(sex_b6.values()),
        "Ålder": [f"{b['label']} år" for b in codes.age_bands],
        "Diagnos": sorted(labels.values()),
        "Utbildning": list(codes.education_groups),
    }
    frames = []
    for block, cats in categories.items():
        counted = (
            rows.filter(pl.col(block).is_in(cats))
            .group_by("income", "group", pl.col(block).alias("category"))
            .len("n")
        )
        cells = [(i, g, c) for i in B6_INCOME for g, _ in GROUPS for c in cats]
        grid = pl.DataFrame(cells, schema=["income", "group", "category"], orient="row")
        full = grid.join(counted, on=["income", "group", "category"], how="left").with_columns(
            pl.col("n").fill_null(0).cast(pl.Int64), pl.lit(block).alias("block")
        )
        total = pl.col("n").sum().over("income", "group")
        frames.append(full.with_columns(total.alias("block_total")))
    b6 = pl.concat(frames).with_row_index("cell")
    constraints = []
    for _, part in b6.group_by("block", "income", "group", maintain_order=True):
        # the block total is shown (as the column n), so parts must not be recoverable
        total_cell = len(b6) + len(constraints)
        constraints.append((total_cell, part["cell"].to_list()))
    keys = ["block", "income", "group"]
    totals = b6.group_by(keys, maintain_order=True).agg(pl.col("n").sum().alias("total"))
    hidden = suppressed_cells(
        [*b6["n"].to_list(), *totals["total"].to_list()], constraints, min_count
    )
    total_hidden = totals.select(*keys, pl.Series("total_hidden", hidden[len(b6) :]))
    # a hidden block total hides its column's percents too (n / percent gives it back)
    return (
        b6.drop("cell")
        .with_columns(pl.Series("suppressed", hidden[: len(b6)]))
        .join(total_hidden, on=keys, how="left", maintain_order="left")
        .with_columns((pl.col("suppressed") | pl.col("total_hidden")).alias("suppressed"))
        .with_columns(
            pl.when(~pl.col("suppressed") & (pl.col("block_total") > 0))
            .then(100 * pl.col("n") / pl.col("block_total"))
            .alias("percent"),
            pl.when(~pl.col("suppressed")).then(pl.col("n")).alias("n"),
            pl.when(~pl.col("total_hidden")).then(pl.col("block_total")).alias("block_total"),
        )
        .select("block", "category", "income", "group", "n", "percent", "block_total", "suppressed")
    )


def adjusted_effects(models: pl.DataFrame, cells: pl.DataFrame) -> pl.DataFrame:
    """One row per model: treatment odds ratio and AME (pp) with 95 % CIs, p and n (§7).

    Models whose table cells are suppressed show no estimates (they were fitted on
    the same small groups).
    """
    wide = (
        models.filter(pl.col("term").is_in(["treated", "OR(treated)", "AME_pp(treated)"]))
        .select(
            "model",
            "table",
            "income_group",
            "length_class",
            "outcome",
            "term",
            "estimate",
            "ci_low",
            "ci_high",
            "p_value",
            "n",
        )
        .pivot(
            on="term",
            index=["model", "table", "income_group", "length_class", "outcome", "n"],
            values=["estimate", "ci_low", "ci_high", "p_value"],
        )
    )
    renamed = wide.select(
        "model",
        "table",
        "income_group",
        "length_class",
        "outcome",
        "n",
        pl.col("estimate_OR(treated)").alias("odds_ratio"),
        pl.col("ci_low_OR(treated)").alias("or_ci_low"),
        pl.col("ci_high_OR(treated)").alias("or_ci_high"),
        pl.col("estimate_AME_pp(treated)").alias("ame_pp"),
        pl.col("ci_low_AME_pp(treated)").alias("ame_ci_low"),
        pl.col("ci_high_AME_pp(treated)").alias("ame_ci_high"),
        pl.col("p_value_treated").alias("p_value"),
    )
    hidden = cells.filter(pl.col("suppressed")).select("model").drop_nulls().unique()
    estimates = [
        "n",
        "odds_ratio",
        "or_ci_low",
        "or_ci_high",
        "ame_pp",
        "ame_ci_low",
        "ame_ci_high",
        "p_value",
    ]
    is_hidden = pl.col("model").is_in(hidden["model"].implode())
    return renamed.with_columns(
        *(pl.when(~is_hidden).then(pl.col(c)).alias(c) for c in estimates),
        is_hidden.alias("suppressed"),
        pl.when(~is_hidden)
        .then(pl.col("p_value").map_elements(stars, return_dtype=pl.String))
        .otherwise(pl.lit(""))
        .alias("stars"),
    )


def compare_shares(x1: int, n1: int, x2: int, n2: int) -> dict[str, Any]:
    """Treated x1/n1 vs control x2/n2: percents, difference and Newcombe 95 % CI (percentage
    points), pooled two-proportion z p-value and the direction of the difference."""
    lo, hi = newcombe_diff_ci(x1, n1, x2, n2)
    sign = x1 * n2 - x2 * n1  # exact: no rounding decides "equal"
    percent_treated, percent_control = 100 * x1 / n1, 100 * x2 / n2
    return {
        "n_treated": n1,
        "n_control": n2,
        "percent_treated": percent_treated,
        "percent_control": percent_control,
        "diff_pp": percent_treated - percent_control,
        "diff_ci_low": 100 * lo,
        "diff_ci_high": 100 * hi,
        "p_unadjusted": two_proportion_z(x1, n1, x2, n2),
        "direction": "treated higher" if sign > 0 else "treated lower" if sign < 0 else "equal",
    }


def significant_for(p: float | None, estimate: float | None) -> str:
    """Whom a difference favours at p < ALPHA (0.05): "treated", "controls", or "" (not
    significant, no p, or a zero estimate); `estimate` is the difference the p belongs to."""
    if p is None or estimate is None or not p < ALPHA or not estimate or math.isnan(estimate):
        return ""
    return "treated" if estimate > 0 else "controls"


def cell_directions(cells: pl.DataFrame, adjusted: pl.DataFrame, method: str) -> list[dict]:
    """One comparison per (table, block, row, length class) of B4, B5 and Table 3 (pp)."""
    ame = {r["model"]: r for r in adjusted.iter_rows(named=True)}
    shares = cells.filter(pl.col("row") != "n")
    out = []
    keys = ["table", "block", "row", "length_class"]
    for _, pair in shares.group_by(keys, maintain_order=True):
        by_group = {r["group"]: r for r in pair.iter_rows(named=True)}
        treated, control = by_group["Insats"], by_group["Kontroll"]
        row = {k: treated[k] for k in (*keys, "outcome", "model")}
        row["suppressed"] = bool(treated["suppressed"] or control["suppressed"])
        if row["suppressed"] or not treated["n"] or not control["n"]:
            out.append(row)
            continue
        row |= compare_shares(treated["count"], treated["n"], control["count"], control["n"])
        model = ame.get(treated["model"]) or {}
        row |= {
            "ame_pp": model.get("ame_pp"),
            "ame_ci_low": model.get("ame_ci_low"),
            "ame_ci_high": model.get("ame_ci_high"),
            "p_adjusted": treated["p_adjusted"],
            "p_value": treated["p_value"],
            "stars": treated["stars"],
        }
        tested = row["ame_pp"] if method == "adjusted_logit" else row["diff_pp"]
        row["significant_for"] = significant_for(row["p_value"], tested)
        out.append(row)
    return out


def b6_directions(b6: pl.DataFrame) -> list[dict]:
    """One comparison per (block, category, income group) of Table B6: the category's share of
    the block total, treated vs control (pp), with the z p-value (no model)."""
    out = []
    for (block, category, income), pair in b6.group_by(
        ["block", "category", "income"], maintain_order=True
    ):
        by_group = {r["group"]: r for r in pair.iter_rows(named=True)}
        treated, control = by_group["Insats"], by_group["Kontroll"]
        row: dict[str, Any] = {"table": "B6", "block": block, "row": category, "income": income}
        row["suppressed"] = bool(treated["suppressed"] or control["suppressed"])
        if row["suppressed"] or not treated["block_total"] or not control["block_total"]:
            out.append(row)
            continue
        x1, n1 = treated["n"], treated["block_total"]
        row |= compare_shares(x1, n1, control["n"], control["block_total"])
        row |= {"p_value": row["p_unadjusted"], "stars": ""}
        row["significant_for"] = significant_for(row["p_value"], row["diff_pp"])
        out.append(row)
    return out


def income_directions(
    cells: pl.DataFrame, adjusted: pl.DataFrame, b6: pl.DataFrame, method: str
) -> pl.DataFrame:
    """Every treated-vs-control comparison of B4, B5, Table 3 and B6 (§10 item 40): percents,
    difference with Newcombe 95 % CI and adjusted AME with CI (percentage points), p-values.

    `cells` are the suppressed tidy cells (`suppress_income_cells`), `adjusted` is
    `adjusted_effects`, `b6` is `table_b6`. `p_value` is the p the stars use
    (`method`; for B6 the z test) and `significant_for` says whom the difference
    favours at p < 0.05 (ALPHA), by the sign of the estimate that p tests (the AME for
    `adjusted_logit`, else the raw difference; for B6 the group with the larger share).
    `direction` is the sign of the raw difference. `p_adjusted` is the treatment
    coefficient's Wald p (as in income_adjusted.csv), the AME CI the delta-method Wald
    CI, so near 0.05 the two can disagree. A comparison with a suppressed cell keeps
    only its labels and `suppressed` true.
    """
    rows = [*cell_directions(cells, adjusted, method), *b6_directions(b6)]
    filled = [{"stars": "", "direction": "", "significant_for": "", **r} for r in rows]
    return pl.DataFrame(filled, schema=DIRECTION_SCHEMA)


def figure_data(cells: pl.DataFrame, outcomes: pl.DataFrame, last_window: int) -> pl.DataFrame:
    """Figures 13-14 (§4.7-4.8): at `last_window` months, any / no / regained income shares per
    length class and group, from B4 (income before) and B5 (no income before)."""
    label = WINDOW_LABEL.format(last_window)
    part = cells.filter(
        (pl.col("row") == label)
        & (pl.col("length_class") != ALL_LENGTHS)
        & pl.col("table").is_in(["B4", "B5"])
    )
    any_income = part.filter(pl.col("block") == "Någon inkomst")
    rows = pl.concat(
        [
            any_income.with_columns(pl.lit("Någon inkomst").alias("series")),
            any_income.with_columns(
                pl.lit("Ingen inkomst").alias("series"),
                (100 - pl.col("percent")).alias("percent"),
                (100 - pl.col("ci_high")).alias("ci_low"),
                (100 - pl.col("ci_low")).alias("ci_high"),
            ),
            part.filter(pl.col("block") == "Tidigare inkomstnivå").with_columns(
                pl.lit("Återfår tidigare inkomst").alias("series")
            ),
        ]
    )
    figure = pl.when(pl.col("table") == "B4").then(pl.lit("figure13")).otherwise(pl.lit("figure14"))
    with_income = pl.col("in_income_tables") & pl.col("income_before").fill_null(False)
    medians = (
        outcomes.filter(with_income)
        .group_by("length_class", _label("treated", "Insats", "Kontroll").alias("group"))
        .agg(
            pl.col("ref_income_sek").median().alias("median_ref_income_sek"),
            pl.len().alias("n_ref"),
        )
    )
    return (
        rows.with_columns(figure.alias("figure"))
        .join(medians, on=["length_class", "group"], how="left")
        .select(
            "figure",
            "series",
            "length_class",
            "group",
            "n",
            "percent",
            "ci_low",
            "ci_high",
            "suppressed",
            "median_ref_income_sek",
            "n_ref",
        )
        .sort("figure", "series", "length_class", "group")
    )


def plot_shares(data: pl.DataFrame, figure: str, title: str, path: Any) -> Any:
    """Grouped bars of the figure's shares (percent) with 95 % CIs; returns the path."""
    part = data.filter((pl.col("figure") == figure) & ~pl.col("suppressed"))
    series = part["series"].unique(maintain_order=True).to_list()
    bars = [(length, g) for length in LENGTH_CLASSES[:2] for g, _ in GROUPS]
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=120)
    width = 0.8 / max(len(bars), 1)
    for i, (length, group) in enumerate(bars):
        cell = part.filter((pl.col("length_class") == length) & (pl.col("group") == group))
        xs, ys, err_lo, err_hi = [], [], [], []
        for j, name in enumerate(series):
            row = cell.filter(pl.col("series") == name)
            if row.height:
                xs.append(j + (i - len(bars) / 2 + 0.5) * width)
                ys.append(row["percent"].item())
                err_lo.append(row["percent"].item() - row["ci_low"].item())
                err_hi.append(row["ci_high"].item() - row["percent"].item())
        ax.bar(
            xs, ys, width, yerr=[err_lo, err_hi], capsize=2, label=f"{group}, sjukperiod {length}"
        )
    ax.set_xticks(range(len(series)), series)
    ax.set_ylabel("Andel (%) inom 12 månader")
    ax.set_ylim(0, 105)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7)
    ax.grid(axis="y", alpha=0.3)
    return write_figure(fig, path)


def run(cfg: Any) -> None:
    """Write Tables B4, B5, 3, B6 (tidy and published layout), their directions, Figures 13-14."""
    outputs = config.resolve_path(cfg.paths.outputs)
    tables, figures = outputs / "tables", outputs / "figures"
    min_count = int(cfg.disclosure.min_count)
    windows = tuple(int(w) for w in cfg.income.windows)
    outcomes = pl.read_parquet(outputs / "outcomes.parquet")
    models = pl.read_parquet(outputs / "models" / "income_logit.parquet")
    method = str(cfg.significance.method)
    cells = add_significance(b4_b5_table3(outcomes, windows), models, method)
    cells = suppress_income_cells(cells, min_count)
    io.write_csv(cells, tables / "income_tables_long.csv")
    for table, name in (("B4", "table_b4"), ("B5", "table_b5"), ("Tabell 3", "table3")):
        io.write_csv(printed_layout(cells, table), tables / f"{name}.csv")
    b6 = table_b6(outcomes, cfg.codes, min_count)
    io.write_csv(b6, tables / "table_b6.csv")
    adjusted = adjusted_effects(models, cells)
    io.write_csv(adjusted, tables / "income_adjusted.csv")
    directions = income_directions(cells, adjusted, b6, method)
    io.write_csv(directions, tables / "income_directions.csv")
    figs = figure_data(cells, outcomes, max(windows))
    enough = pl.col("n_ref") >= min_count
    median = pl.when(enough).then(pl.col("median_ref_income_sek"))
    figs = figs.with_columns(median.alias("median_ref_income_sek"))
    io.write_csv(figs, tables / "figures13_14.csv")
    plot_shares(
        figs,
        "figure13",
        "Figur 13 Anställda med inkomst före: inkomst inom 12 månader",
        figures / "figure13.png",
    )
    plot_shares(
        figs,
        "figure14",
        "Figur 14 Anställda utan inkomst före: inkomst inom 12 månader",
        figures / "figure14.png",
    )
    treated_cells = cells.filter((pl.col("group") == "Insats") & (pl.col("row") != "n"))
    log.info(
        "income tables: %d cells, %d starred (%s), %d suppressed below %d",
        cells.height,
        (treated_cells["stars"] != "").sum(),
        cfg.significance.method,
        cells["suppressed"].sum(),
        min_count,
    )
    favours = directions["significant_for"]
    log.info(
        "income directions: %d comparisons, %d significantly favour the treated, %d the controls",
        directions.height,
        (favours == "treated").sum(),
        (favours == "controls").sum(),
    )
