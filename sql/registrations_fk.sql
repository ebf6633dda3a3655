-- Purpose: FK registrations (fk_handelser) inside each spell of the unit, with their
--   day number in the spell (analysis-spec.md §8.2, report §5.3).
-- Inputs: spells (spell_id, lopnr, start, "end"); events (lopnr, datum, handelse), staged.
-- Params: none.
-- Output, one row per registration inside a spell: spell_id, handelse, datum, day (0 =
--   the spell's first day). Sorted by spell_id, datum, handelse.
with

final as (
    select
        spells.spell_id,
        events.handelse,
        events.datum,
        (events.datum - spells.start)::integer as day
    from spells
    inner join events
        on
            events.lopnr = spells.lopnr
            and events.datum between spells.start and spells."end"
)

select * from final
order by spell_id, datum, handelse
