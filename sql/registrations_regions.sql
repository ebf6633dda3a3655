-- Purpose: GC001 contacts registered per provider region, year and care level, for
--   holding against the regions' own survey counts (analysis-spec.md §8.1, report §3.5).
-- Inputs: contacts (lopnr, datum, kva, region, vardniva), staged.
-- Params: $codes varchar[] (the intervention codes), $first_year, $last_year integer.
-- Output, one row per region, year and care level with contacts: region, year,
--   vardniva, n_contacts, n_persons.
with

intervention as (
    select
        lopnr,
        region,
        vardniva,
        year(datum) as year
    from contacts
    where
        list_has_any(string_split(coalesce(kva, ''), ' '), $codes::varchar[])
        and year(datum) between $first_year::integer and $last_year::integer
),

final as (
    select
        region,
        year::integer as year,
        vardniva,
        count(*) as n_contacts,
        count(distinct lopnr) as n_persons
    from intervention
    group by region, year, vardniva
)

select * from final
order by region, year, vardniva
