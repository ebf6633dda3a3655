"""The synthetic delivery in the shape researchers receive in MONA (issue 17): several files
per register, upper-case SCB/FK/Socialstyrelsen-style names, SAS transport, Stata and
cp1252 CSV files, and codes as the registers deliver them. `conf/data/mona_example.yaml`
reads it back; staged, it equals the contract-shaped delivery row for row.

Every contract row goes to exactly one file, as it is or with its codes translated by
the maps below (the inverse of the example's `recode:`); a value no map covers (the
planted bad values) is written as it is, so it is judged as in the contract shape.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import polars as pl
import pyreadstat

from pipeline.core.io import atomic_path

# contract code -> code as delivered (conf/data/mona_example.yaml holds the inverse)
INSURED = {"anstalld": "1", "anstalld_dag1": "2", "arbetslos": "3", "egenforetagare": "4",
           "ovrig": "5"}  # fmt: skip
OWNERSHIP = {"offentlig": "1", "privat": "2"}
CARE_LEVEL = {"primarvard": "1", "specialiserad_oppen": "2", "sluten": "3"}
SEX = {"1": "M", "2": "K"}
EDUCATION = {"1": "106", "2": "206", "3": "310", "4": "410", "5": "520", "6": "546", "7": "640"}
# birth country: each group delivered as several country codes, in turn
COUNTRIES = {"sverige": ("SE",), "norden": ("NO", "DK", "FI"), "eu": ("DE", "PL"),
             "ovriga": ("IQ", "SY", "US")}  # fmt: skip
EVENTS = {"avstamningsmote": "AVST", "sassam": "SASSAM", "plan_fk": "PLANFK",
          "plan_arbetsgivare": "PLANAG"}  # fmt: skip


def coded(column: str, codes: Mapping[str, str]) -> pl.Expr:
    """`column` as text with each contract code replaced by its delivered code; others as
    they are (null stays null)."""
    text = pl.col(column).cast(pl.String)
    return text.replace_strict(dict(codes), default=text, return_dtype=pl.String)


def extent_fraction() -> pl.Expr:
    """omfattning as a fraction of full time (Float64): 25 -> 0.25; null stays null."""
    return (pl.col("omfattning").cast(pl.Float64) / 100).alias("OMF")


def birth_country() -> pl.Expr:
    """fodelseland as a country code: a group's codes in turn by row; others as they are."""
    row = pl.int_range(pl.len())
    expr = pl.col("fodelseland")
    for group, codes in reversed(COUNTRIES.items()):
        pick = pl.lit(pl.Series(codes)).gather(row % len(codes))
        expr = pl.when(pl.col("fodelseland") == group).then(pick).otherwise(expr)
    return expr.alias("FODGRUPP")


def files(table: str, frame: pl.DataFrame, regions: list[str]) -> dict[str, pl.DataFrame]:
    """The MONA-shaped files of one contract table: relative path -> frame (format by the
    path's suffix); every row of `frame` is in exactly one of them."""
    if table == "sjukpenning":
        return {
            "fk/midas_sjp.dta": frame.select(
                pl.col("lopnr").alias("LopNr"),
                pl.col("from_datum").alias("SJP_FROM"),
                pl.col("tom_datum").alias("SJP_TOM"),
                extent_fraction(),
                pl.col("diagnos").alias("DIAGNOS"),
                coded("forsakradtyp", INSURED).alias("FORSTYP"),
            )
        }
    if table == "vardkontakter":
        return contact_files(frame, regions)
    if table == "agi":
        year = (pl.col("period") // 100).cast(pl.String).fill_null("okant")
        renamed = frame.select(
            pl.col("lopnr").alias("LopNr"),
            pl.col("period").alias("PERIOD"),
            pl.col("arbetsgivare").alias("ARBGIVLOPNR"),
            pl.col("kontant_bruttolon").alias("KONTANTBRUTTOLON"),
            year.alias("_year"),
        )
        return {
            f"scb/agi_{y}.parquet": part.drop("_year")
            for (y,), part in renamed.group_by("_year", maintain_order=True)
        }
    if table == "bakgrund":
        return {
            "scb/lisa.dta": frame.select(
                pl.col("lopnr").alias("LopNr"),
                pl.col("ar").alias("AR"),
                coded("kon", SEX).alias("KON"),
                pl.col("fodelsear").alias("FODELSEAR"),
                birth_country(),
                pl.col("civilstand").alias("CIVIL"),
                coded("sun2000niva", EDUCATION).alias("SUN2000NIVA"),
                pl.col("lan").alias("LAN"),
            )
        }
    if table == "fk_handelser":
        return {
            "fk/handelser.csv": frame.select(
                pl.col("lopnr").alias("LopNr"),
                pl.col("datum").alias("DATUM"),
                coded("handelse", EVENTS).alias("HANDELSETYP"),
            )
        }
    if table == "regionenkat":
        return {"regionenkat.csv": frame.rename({"region": "Region", "ar": "Ar"})}
    raise ValueError(f"no MONA shape for table {table!r}")


def contact_files(frame: pl.DataFrame, regions: list[str]) -> dict[str, pl.DataFrame]:
    """The patient register as delivered: primary care one CSV per region (county code
    without its leading zero, no care-level column), inpatient care one SAS transport
    file (no care-level column), and the rest (specialised outpatient care, and contacts
    whose care level or primary-care region is not a valid code) one with its care level."""
    valid_region = pl.col("region").is_in(regions)
    primary = ((pl.col("vardniva") == "primarvard") & valid_region).fill_null(False)
    inpatient = (pl.col("vardniva") == "sluten").fill_null(False)
    common = [
        pl.col("lopnr").alias("LOPNR"),
        pl.col("datum").alias("INDATUM"),
        pl.col("kva").alias("OP"),
    ]
    out: dict[str, pl.DataFrame] = {}
    pv = frame.filter(primary).with_columns(pl.col("region").str.strip_chars_start("0"))
    for (region,), part in pv.group_by("region", maintain_order=True):
        out[f"pv/pv_{region}.csv"] = part.select(
            *common, pl.col("region").alias("LAN"), coded("regi", OWNERSHIP).alias("REGI")
        )
    out["par/par_sv.xpt"] = frame.filter(inpatient & ~primary).select(
        *common, pl.col("region").alias("LAN"), coded("regi", OWNERSHIP).alias("REGI")
    )
    out["par/par_ov.xpt"] = frame.filter(~primary & ~inpatient).select(
        *common,
        pl.col("region").alias("LAN"),
        coded("vardniva", CARE_LEVEL).alias("VARDNIVA"),
        coded("regi", OWNERSHIP).alias("REGI"),
    )
    return dict(sorted(out.items()))


def _pandas(frame: pl.DataFrame):
    """`frame` for pyreadstat: text as object columns with "" for missing."""
    text = [c for c, t in frame.schema.items() if t == pl.String]
    return frame.with_columns(pl.col(text).fill_null("")).to_pandas()


WRITERS: dict[str, Callable[[pl.DataFrame, Path], None]] = {
    ".parquet": lambda f, p: f.write_parquet(p),
    ".csv": lambda f, p: p.write_bytes(
        f.write_csv(separator=";", null_value="").encode("cp1252", errors="strict")
    ),
    ".dta": lambda f, p: pyreadstat.write_dta(_pandas(f), str(p), version=15),
    ".xpt": lambda f, p: pyreadstat.write_xport(_pandas(f), str(p), table_name="PAR"),
}


def write(out_dir: Path, table: str, frame: pl.DataFrame, regions: list[str]) -> list[Path]:
    """Write one contract table's MONA-shaped files under `out_dir`; returns their paths."""
    written = []
    for name, part in files(table, frame, regions).items():
        path = out_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            WRITERS[path.suffix](part, Path(tmp))
        written.append(path)
    return written
