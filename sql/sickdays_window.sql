-- Purpose: the benefit periods of each person that fall inside a member's window,
--   clipped to it, for net and gross sick days in a window (analysis-spec.md §6.4).
-- Inputs: members (member_id, lopnr, window_start, window_end); periods (lopnr,
--   from_datum, tom_datum, omfattning), staged sjukpenning.
-- Params: none.
-- Output, one row per period piece: member_id, from_datum, tom_datum, omfattning;
--   sorted by member_id, from_datum, tom_datum.
with

member as (
    select
        member_id,
        lopnr,
        window_start,
        window_end
    from members
),

final as (
    select
        member.member_id,
        greatest(periods.from_datum, member.window_start) as from_datum,
        least(periods.tom_datum, member.window_end) as tom_datum,
        periods.omfattning
    from member
    inner join periods
        on
            periods.lopnr = member.lopnr
            and periods.from_datum <= member.window_end
            and periods.tom_datum >= member.window_start
)

select * from final
order by member_id, from_datum, tom_datum, omfattning
