-- Purpose: intervention contacts (KVÅ codes $codes, GC001 by default) inside each
--   sick-leave spell, and whether DV077 / AW026 were registered in it
--   (analysis-spec.md §3.1). A range join by person and date, no Python loop.
-- Inputs: spells (spell_id, lopnr, start, "end"), from outputs/spells.parquet;
--   contacts (lopnr, datum, kva, region, vardniva, regi), staged vardkontakter.
-- Params: $codes varchar[], $window_start date, $window_end date (study window of
--   the contacts), $grace_days integer (contacts this many days before the start
--   still count), $day_origin integer (day number of the spell's first day),
--   $dv077 varchar, $aw026 varchar (the related KVÅ codes, codes.kva.related),
--   $care_levels varchar[] (care levels in tie-break order, codes.care_level_groups).
-- Output, one row per spell: spell_id, treated, first_gc001, day_first_gc001,
--   n_gc001, regi_first, region_first, vardniva_first, last_gc001, regi_latest,
--   region_latest, vardniva_latest, has_dv077, has_aw026. Ties on one date are
--   broken by care level (in $care_levels order, unlisted last), then regi,
--   then region.
with

spell as (
    select
        spell_id,
        lopnr,
        start,
        "end"
    from spells
),

coded_contact as (
    select
        lopnr,
        datum,
        region,
        vardniva,
        regi,
        string_split(coalesce(kva, ''), ' ') as kva_codes
    from contacts
    where datum between $window_start::date and $window_end::date
),

relevant_contact as (
    select
        lopnr,
        datum,
        region,
        vardniva,
        regi,
        list_has_any(kva_codes, $codes::varchar[]) as is_intervention,
        list_contains(kva_codes, $dv077::varchar) as is_dv077,
        list_contains(kva_codes, $aw026::varchar) as is_aw026,
        coalesce(list_position($care_levels::varchar[], vardniva), 99) as care_order
    from coded_contact
    where
        list_has_any(kva_codes, $codes::varchar[])
        or list_contains(kva_codes, $dv077::varchar)
        or list_contains(kva_codes, $aw026::varchar)
),

contact_in_spell as (
    select
        spell.spell_id,
        spell.start,
        relevant_contact.*
    from spell
    inner join relevant_contact
        on
            relevant_contact.lopnr = spell.lopnr
            and relevant_contact.datum
            between spell.start - $grace_days::integer and spell."end"
),

intervention_per_spell as (
    select
        spell_id,
        min(datum) as first_gc001,
        max(datum) as last_gc001,
        count(*) as n_gc001,
        first(regi order by datum, care_order, regi, region) as regi_first,
        first(region order by datum, care_order, regi, region) as region_first,
        first(vardniva order by datum, care_order, regi, region) as vardniva_first,
        first(regi order by datum desc, care_order, regi, region) as regi_latest,
        first(region order by datum desc, care_order, regi, region) as region_latest,
        first(vardniva order by datum desc, care_order, regi, region) as vardniva_latest
    from contact_in_spell
    where is_intervention
    group by spell_id
),

related_per_spell as (
    select
        spell_id,
        bool_or(is_dv077) as has_dv077,
        bool_or(is_aw026) as has_aw026
    from contact_in_spell
    group by spell_id
),

final as (
    select
        spell.spell_id,
        intervention_per_spell.spell_id is not null as treated,
        intervention_per_spell.first_gc001,
        (intervention_per_spell.first_gc001 - spell.start + $day_origin::integer)::integer
            as day_first_gc001,
        coalesce(intervention_per_spell.n_gc001, 0)::integer as n_gc001,
        intervention_per_spell.regi_first,
        intervention_per_spell.region_first,
        intervention_per_spell.vardniva_first,
        intervention_per_spell.last_gc001,
        intervention_per_spell.regi_latest,
        intervention_per_spell.region_latest,
        intervention_per_spell.vardniva_latest,
        coalesce(related_per_spell.has_dv077, false) as has_dv077,
        coalesce(related_per_spell.has_aw026, false) as has_aw026
    from spell
    left join intervention_per_spell on spell.spell_id = intervention_per_spell.spell_id
    left join related_per_spell on spell.spell_id = related_per_spell.spell_id
)

select * from final
order by spell_id
