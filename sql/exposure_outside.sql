-- Purpose: where intervention contacts (KVÅ $codes) fall relative to the spells:
--   a registration-quality diagnostic (report §3.5; analysis-spec.md §1.2, the
--   `gc001_outside_spell` attrition reason). Counts only, no person-level values.
-- Inputs: spells (lopnr, start, "end"); contacts (lopnr, datum, kva, vardniva), staged.
-- Params: $codes varchar[], $window_start date, $window_end date, $grace_days integer.
-- Output, one row per calendar year and care level: year, vardniva, n_contacts,
--   n_inside_spell, n_outside_spell, n_persons, n_persons_only_outside.
with

intervention as (
    select
        lopnr,
        datum,
        vardniva
    from contacts
    where
        datum between $window_start::date and $window_end::date
        and list_has_any(string_split(coalesce(kva, ''), ' '), $codes::varchar[])
),

located as (
    select
        intervention.*,
        exists(
            select 1
            from spells
            where
                spells.lopnr = intervention.lopnr
                and intervention.datum
                between spells.start - $grace_days::integer and spells."end"
        ) as inside
    from intervention
),

person_inside as (
    select
        lopnr,
        bool_or(inside) as any_inside
    from located
    group by lopnr
),

final as (
    select
        year(located.datum) as year,
        located.vardniva,
        count(*) as n_contacts,
        count(*) filter (where located.inside) as n_inside_spell,
        count(*) filter (where not located.inside) as n_outside_spell,
        count(distinct located.lopnr) as n_persons,
        count(distinct located.lopnr) filter (where not person_inside.any_inside)
            as n_persons_only_outside
    from located
    inner join person_inside on located.lopnr = person_inside.lopnr
    group by all
)

select * from final
order by year, vardniva
