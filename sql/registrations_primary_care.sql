-- Purpose: the proxy for "sick leave issued in primary care" of control spells
--   (analysis-spec.md §8.2): at least one primary-care contact in
--   [start - $days_before, start + $days_after].
-- Inputs: spells (spell_id, lopnr, start); contacts (lopnr, datum, vardniva), staged.
-- Params: $days_before integer, $days_after integer, $primary_care varchar (the care
--   level of primary care, codes.primary_care).
-- Output: one row per spell with such a contact: spell_id.
with

primary_care as (
    select
        lopnr,
        datum
    from contacts
    where vardniva = $primary_care::varchar
),

final as (
    select distinct spells.spell_id
    from spells
    inner join primary_care
        on
            primary_care.lopnr = spells.lopnr
            and primary_care.datum
            between spells.start - $days_before::integer and spells.start + $days_after::integer
)

select * from final
order by spell_id
