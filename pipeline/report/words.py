"""The reader's vocabulary: every Swedish word the HTML report and the workbook print that
is not stored in a table (headers, codes, attrition steps, sentences' fixed parts).

The CSV and parquet files keep English snake_case column names and codes; the report
translates them here and nowhere else. Words that *are* stored as data values (group,
ownership and length labels of the published tables) live in `labels.py`.
Each column has a header and a kind; the kind says how `formatting.cell` prints it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# column -> (Swedish header, kind). Kinds: text, code (as written), flag (ja/nej), count,
# percent (0-100, one decimal), pp (percentage points), share (0-1, printed as percent),
# days, sek, years, ratio, p, stat (four significant digits), n_pct ("n (pct)" cells).
COLUMNS: dict[str, tuple[str, str]] = {
    # attrition
    "step": ("Steg", "text"),
    "description": ("Urvalsregel", "text"),
    "n_rows": ("Rader", "count"),
    "n_spells": ("Sjukperioder", "count"),
    "n_persons": ("Personer", "count"),
    "n_spells_treated": ("Sjukperioder, insats", "count"),
    "n_persons_treated": ("Personer, insats", "count"),
    "n_spells_control": ("Sjukperioder, kontroll", "count"),
    "n_persons_control": ("Personer, kontroll", "count"),
    # groups and keys
    "group": ("Grupp", "text"),
    "block": ("Block", "text"),
    "category": ("Kategori", "text"),
    "row": ("Rad", "text"),
    "table": ("Tabell", "text"),
    "ownership": ("Regi", "text"),
    "length_class": ("Sjukperiodens längd", "text"),
    "income": ("Inkomst före", "text"),
    "income_group": ("Inkomst före", "text"),
    "outcome": ("Utfall", "text"),
    "model": ("Modell", "text"),
    "series": ("Serie", "text"),
    "figure": ("Figur", "text"),
    "diagnosis": ("Diagnosgrupp", "text"),
    "care_level": ("Vårdnivå", "text"),
    "care_level_group": ("Vårdnivå", "text"),
    "vardniva": ("Vårdnivå", "text"),
    "variant": ("Variant", "text"),
    "design": ("Design", "text"),
    "unit": ("Enhet", "text"),
    "registration": ("Registrering", "text"),
    "handelse": ("Registrering", "text"),
    "anchor": ("Före", "text"),
    "statistic": ("Mått", "text"),
    "diff_method": ("Metod för skillnaden", "text"),
    "direction": ("Riktning", "text"),
    "significant_for": ("Signifikant till förmån för", "text"),
    "variance": ("Standardfel", "text"),
    "term": ("Term", "text"),
    "drop_reason": ("Skäl att inte analysera", "text"),
    "region": ("Länskod", "code"),
    "region_name": ("Region", "text"),
    "year": ("År", "code"),
    "decile": ("Decil", "code"),
    "band": ("Intervall", "code"),
    "day_from": ("Från dag", "code"),
    "day_to": ("Till dag", "code"),
    "late_day": ("Sen dag", "code"),
    "months_before": ("Månader före", "code"),
    "window_days": ("Fönster (dagar)", "code"),
    "stars": ("Stjärnor", "text"),
    # flags
    "any_fk": ("Möte eller plan", "flag"),
    "extrapolated": ("Extrapolerat", "flag"),
    "reported": ("I rapporten", "flag"),
    "in_cohort_regions": ("Bland analyserade regioner", "flag"),
    # counts
    "n": ("n", "count"),
    "count": ("Antal", "count"),
    "n_ref": ("n (referensinkomst)", "count"),
    "n_treated": ("n, insats", "count"),
    "n_control": ("n, kontroll", "count"),
    "n_censored": ("Pågående vid datagränsen", "count"),
    "n_events": ("Avslutade perioder", "count"),
    "n_strata": ("Matchade set", "count"),
    "n_sets": ("Riskset", "count"),
    "n_contacts": ("Kontakter", "count"),
    "n_inside_spell": ("Inom en sjukperiod", "count"),
    "n_outside_spell": ("Utanför sjukperioder", "count"),
    "n_persons_only_outside": ("Personer bara utanför", "count"),
    "n_at_start": ("I risk vid start", "count"),
    "censored": ("Censurerade", "count"),
    "events": ("Första GC001", "count"),
    "spell_days": ("Sjukdagar i risk", "count"),
    "observed": ("Observerat", "count"),
    "expected": ("Förväntat", "stat"),
    "block_total": ("Blockets n", "count"),
    "registered": ("Registrerade", "count"),
    "registered_2023": ("Registrerade 2023", "count"),
    "registered_2024": ("Registrerade 2024", "count"),
    "registered_primary_care": ("Registrerade i primärvård", "count"),
    "registered_survey_years": ("Registrerade, enkätens år", "count"),
    "reported_survey_years": ("Rapporterade, enkätens år", "count"),
    "antal_insatser": ("Rapporterade (enkät)", "count"),
    "antal_insatser_2023": ("Rapporterade 2023", "count"),
    "antal_insatser_2024": ("Rapporterade 2024", "count"),
    "chi2_df": ("Frihetsgrader", "code"),
    # percents and shares
    "percent": ("Andel (%)", "percent"),
    "ci_low": ("95 % KI, nedre", "stat"),
    "ci_high": ("95 % KI, övre", "stat"),
    "percent_treated": ("Insats (%)", "percent"),
    "percent_control": ("Kontroll (%)", "percent"),
    "cumulative_percent": ("Kumulativ andel (%)", "percent"),
    "diff_pp": ("Skillnad (procentenheter)", "pp"),
    "diff_ci_low": ("Skillnad, 95 % KI nedre", "stat"),
    "diff_ci_high": ("Skillnad, 95 % KI övre", "stat"),
    "ame_pp": ("Justerad skillnad (procentenheter)", "pp"),
    "ame_ci_low": ("Justerad skillnad, 95 % KI nedre", "pp"),
    "ame_ci_high": ("Justerad skillnad, 95 % KI övre", "pp"),
    "registered_change_pct": ("Förändring registrerade (%)", "percent"),
    "reported_change_pct": ("Förändring rapporterade (%)", "percent"),
    "share_after_late_day": ("Andel efter den sena dagen (%)", "share"),
    "share_censored": ("Andel pågående vid datagränsen (%)", "share"),
    "register_share": ("Registrerade / rapporterade (%)", "share"),
    "share_0–182": ("Dag 0–182 (%)", "share"),
    "share_183–364": ("Dag 183–364 (%)", "share"),
    "share_365–547": ("Dag 365–547 (%)", "share"),
    "share_548–": ("Dag 548– (%)", "share"),
    "mean_rank": ("Medelrang (0–1)", "stat"),
    # days, money, years
    "mean_days": ("Medel (dagar)", "days"),
    "median_days": ("Median (dagar)", "days"),
    "mean_day": ("Medeldag", "days"),
    "median_day": ("Mediandag", "days"),
    "median_days_after_first_gc001": ("Median dagar efter första GC001", "days"),
    "mean_gross_days": ("Medellängd (dagar)", "days"),
    "median_gross_days": ("Medianlängd (dagar)", "days"),
    "median": ("Median (dagar)", "days"),
    "prior_days": ("Tidigare sjukdagar", "days"),
    "extra_days": ("Fler sjukdagar", "days"),
    "std_err": ("Standardfel", "stat"),
    "mean_treated": ("Medel, insats (dagar)", "days"),
    "mean_control": ("Medel, kontroll (dagar)", "days"),
    "treated": ("Insats", "stat"),
    "treated_ci_low": ("Insats, 95 % KI nedre", "stat"),
    "treated_ci_high": ("Insats, 95 % KI övre", "stat"),
    "control": ("Kontroll", "stat"),
    "control_ci_low": ("Kontroll, 95 % KI nedre", "stat"),
    "control_ci_high": ("Kontroll, 95 % KI övre", "stat"),
    "difference": ("Skillnad", "stat"),
    "median_ref_income_sek": ("Median månadsinkomst före (kr)", "sek"),
    "mean_age": ("Medelålder (år)", "years"),
    "median_age": ("Medianålder (år)", "years"),
    "mean_set_size": ("Medelstorlek på riskset", "stat"),
    # ratios and tests
    "hazard_ratio": ("Hasardkvot", "ratio"),
    "log_hr_std_err": ("Standardfel (log HR)", "stat"),
    "odds_ratio": ("Oddskvot", "ratio"),
    "or_ci_low": ("Oddskvot, 95 % KI nedre", "ratio"),
    "or_ci_high": ("Oddskvot, 95 % KI övre", "ratio"),
    "estimate": ("Skattning", "stat"),
    "rate_per_1000": ("Per 1 000 sjukdagar", "stat"),
    "p_value": ("p", "p"),
    "p_unadjusted": ("p, ojusterat", "p"),
    "p_adjusted": ("p, justerat", "p"),
    "gehan_z": ("Gehan z", "stat"),
    "gehan_p": ("Gehan p", "p"),
    "chi2": ("χ²", "stat"),
    "chi2_p": ("χ² p", "p"),
    # the comparison with the publication (published_comparison.csv)
    "column": ("Kolumn", "text"),
    "printed": ("Tryckt i rapporten", "text"),
    "published": ("Publicerat värde", "stat"),
    "reference": ("Jämförs med", "stat"),
    "ours": ("Vårt värde", "stat"),
    "status": ("Överensstämmelse", "text"),
    "misprint": ("Tryckfel enligt §10", "flag"),
    "spec_item": ("§10 punkt", "code"),
    "source": ("Rad i rapporten", "code"),
}

# English codes stored in the tables, as the reader sees them.
VALUES: dict[str, str] = {
    "true": "ja",
    "false": "nej",
    "primary_care": "Primärvård",
    "specialised": "Specialiserad vård",
    "spells": "Sjukperioder",
    "person_rows": "Personer (en sjukperiod per person)",
    "any_fk": "Något möte eller någon plan",
    "main": "Huvudanalys (år för första GC001)",
    "spell_start_year": "År för sjukperiodens start",
    "without_left_truncated": "Utan vänstertrunkerade perioder",
    "figure13": "Figur 13",
    "figure14": "Figur 14",
    "riskset": "Riskset (index = fallets dag)",
    "report": "Rapportens design (index = start + medeltid)",
    "person": "klustrat per person",
    "set": "klustrat per matchat set",
    "two_way": "klustrat per set och person",
    "income_before": "Inkomst före",
    "no_income_before": "Ingen inkomst före",
    "any_income_3": "Någon inkomst inom 3 mån",
    "any_income_6": "Någon inkomst inom 6 mån",
    "any_income_12": "Någon inkomst inom 12 mån",
    "regained_3": "Återfår inkomst inom 3 mån",
    "regained_6": "Återfår inkomst inom 6 mån",
    "regained_12": "Återfår inkomst inom 12 mån",
    "durable_any": "Varaktig inkomst",
    "durable_regained": "Varaktigt återfådd inkomst",
    "treated higher": "insats högre",
    "treated lower": "insats lägre",
    "treated equal": "lika",
    "treated": "insatsgruppen",
    "controls": "kontrollgruppen",
    "Table 3": "Tabell 3",
    "spell_start": "sjukperiodens start",
    "index": "indexdagen (pågående period medräknad)",
    "index_outside_spell": "indexdagen, utanför pågående period",
    "mean": "Medelvärde",
    "median": "Median",
    "share_any": "Andel med någon sjukdag (%)",
    "net days": "nettodagar",
    "percent": "procent",
    "Welch": "Welch",
    "Newcombe": "Newcombe",
    "paired within sets": "parvis inom set",
    "paired within sets, normal": "parvis inom set, normalapproximation",
    "bootstrap of each group, 2000 draws": "bootstrap per grupp, 2 000 dragningar",
    "register < 1% of the survey": "registret < 1 % av enkäten",
    "no primary-care GC001 in the register": "ingen GC001 i primärvård i registret",
    "at-risk spells, not_yet_treated controls": (
        "alla sjukperioder i risk, ännu ej behandlade kontroller"
    ),
    "§6.2 sets, never_treated controls": "§6.2:s riskset, aldrig behandlade kontroller",
    "§6.2 sets, not_yet_treated controls": "§6.2:s riskset, ännu ej behandlade kontroller",
    "intercept": "konstant",
    "age": "ålder",
    "gc001_day": "dag för första GC001",
}

_TERM = re.compile(r"^(?P<name>[a-z_]+)\[(?P<level>[^\]]+)\]$")
TERM_NAMES = {
    "diagnosis_group": "diagnosgrupp",
    "lan": "län",
    "sex": "kön",
    "region": "län",
    "education_group": "utbildning",
    "t_band": "dag t i sjukperioden",
}

# Attrition steps (cohort stage keys) in words; {…} are filled from the configuration.
STEPS: dict[str, str] = {
    "delivered_rows": "Levererade rader i sjukpenningtabellen",
    "staged_rows": "Rader som klarade kontrollen (resten i karantän)",
    "spells": "Alla sjukperioder, byggda av perioderna",
    "window": "Sjukperioden startar {window_start}–{window_end}",
    "background": "Har en bakgrundsrad det år kovariaterna avser eller tidigare",
    "age": "Ålder {age_min}–{age_max} år det år kovariaterna avser",
    "region": "Region ({region_basis}) bland de analyserade: {regions}",
    "insured_type": "Försäkradtyp inte bland de uteslutna: {exclude_insured_types}",
    "gc001_outside_spell": (
        "Personer vars GC001 bara ligger utanför kohortens sjukperioder utesluts"
    ),
    "untreated_spell_of_treated": "Insatsgruppens sjukperioder utan GC001 utesluts",
    "min_days": "Kontrollernas sjukperioder kortare än {min_days} dagar utesluts",
    "person_row": "En sjukperiod per person: enheten i Tabell 2 och B3 (§3.4)",
}

REGION_BASIS = {"residence": "bostad", "provider": "vårdgivare"}

# Fixed parts of the report's pages.
SECTIONS = {
    "front": "Sammanfattning",
    "toc": "Innehåll",
    "published": "Publicerade värden och våra",
    "attrition": "Urval",
    "tables": "Tabeller",
    "figures": "Figurer",
    "directions": "Riktning för varje jämförelse insats − kontroll (B4–B6, Tabell 3)",
    "claims": "Påståenden i rapportens text och underlaget (§4.12)",
    "deviations": "Avvikelser från den publicerade metoden",
    "inconsistencies": "Kända inkonsekvenser i rapporten och hur de hanteras",
    "disclosure": "Röjandekontroll: vad som döljs och varför",
    "config": "Konfiguration",
}
HIDDEN_CELL = ".."  # a cell the publication gate withheld

# The output-checking log (outputs/disclosure_log.csv) as the report prints it.
DISCLOSURE_TITLE = "Röjandekontroll: vad som döljs och varför"
DISCLOSURE_COLUMNS = {
    "file": "Fil",
    "cells_shown": "Visade celler",
    "hidden_primary": "Dolda: under gränsen",
    "hidden_complement": "Dolda: komplement (n − antal)",
    "hidden_secondary": "Dolda: sekundärt",
    "hidden_linked": "Dolda: som i annan tabell",
    "hidden_by_stage": "Dolda: redan av steget",
    "hidden_not_applicable": "Tomma: ej tillämpliga",
    "values_hidden_with_them": "Dolda härledda värden",
    "rounded": "Avrundade",
    "non_finite_emptied": "Ej tal (tömda)",
}
DISCLOSURE_NOTE = (
    "Varje tabell i outputs/tables har skrivits genom en och samma publiceringsgrind. "
    "Antal personer under {min_count} visas inte ('..'), inte heller ett antal som kan "
    "räknas fram som n − antal, ur en andel och dess n, ur marginaler, nästlade "
    "populationer, kumulativa fönster eller samma cell i en annan tabell; värden som "
    "bygger på ett dolt antal döljs med det, och medelvärden och medianer visas bara för "
    "minst {min_count} personer. Regler: {rules}. Tom cell = ej tillämplig."
)


def header(column: str) -> str:
    """The Swedish header of a table column (a column not listed is a printed label as is)."""
    return COLUMNS.get(column, (column, "text"))[0]


def kind(column: str) -> str:
    """How a column's cells are printed (see COLUMNS); an unlisted column holds "n (pct)" text."""
    return COLUMNS.get(column, (column, "n_pct"))[1]


def code_labels(codes: Any) -> dict[str, str]:
    """The delivery's own codes the tables store (care levels, FK registration kinds) in
    words, from conf/codes: the contract's values are configuration, not code."""
    care = {str(k): str(v).capitalize() for k, v in codes.care_levels.items()}
    return {**care, **{str(k): str(v) for k, v in codes.handelse_labels.items()}}


def value(text: str, labels: Mapping[str, str] | None = None) -> str:
    """A stored code in words (`labels` first, then VALUES; a model term "lan[13]" as
    "län 13"); other text as written."""
    if labels and text in labels:
        return labels[text]
    if text in VALUES:
        return VALUES[text]
    term = _TERM.match(text)
    if term and term["name"] in TERM_NAMES:
        return f"{TERM_NAMES[term['name']]} {value(term['level'], labels)}"
    for joiner in ("|", ", "):  # a composite key ("B4/B5|income_before|Alla|any_income_3")
        if joiner in text:
            return ", ".join(value(part, labels) for part in text.split(joiner))
    return text


VALUES.update(
    {
        "IRR(gc001_day per 30)": "IRR per 30 dagars senare första GC001",
        "prior_ns1": "tidigare sjukdagar, spline 1",
        "prior_ns2": "tidigare sjukdagar, spline 2",
        "prior_ns3": "tidigare sjukdagar, spline 3",
        "prior_days": "tidigare sjukdagar",
        "log1p_prior": "log(1 + tidigare sjukdagar)",
        "musculoskeletal": "rörelseorganen",
        "other": "övriga",
        "other_psych": "övriga psykiatriska",
        "f43": "stressreaktioner (F43)",
        "B4/B5": "B4/B5",
        "within_rounding": "inom avrundning",
        "within_tolerance": "inom toleransen",
        "differs": "avviker",
        "hidden": "dold",
        "not_computed": "ej beräknat",
        "count": "antal",
        "days": "dagar",
        "sek": "kr",
        "years": "år",
    }
)
