-- Purpose: provider ownership (regi) for control spells, Table B3 (analysis-spec.md §1.4):
--   the regi of the person's last primary-care contact within $lookback_days days up to
--   the spell's start (our construction; the report gives no rule). Ties on one date:
--   offentlig before privat.
-- Inputs: spells (spell_id, lopnr, start); contacts (lopnr, datum, vardniva, regi), staged.
-- Params: $lookback_days integer, $primary_care varchar (codes.primary_care).
-- Output: one row per spell with such a contact: spell_id, regi_control.
with

primary_care as (
    select
        lopnr,
        datum,
        regi
    from contacts
    where vardniva = $primary_care::varchar
),

final as (
    select
        spells.spell_id,
        first(primary_care.regi order by primary_care.datum desc, primary_care.regi) as regi_control
    from spells
    inner join primary_care
        on
            primary_care.lopnr = spells.lopnr
            and primary_care.datum
            between spells.start - $lookback_days::integer and spells.start
    group by spells.spell_id
)

select * from final
order by spell_id
