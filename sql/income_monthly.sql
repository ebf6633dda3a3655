-- Purpose: person-month work income from AGI (analysis-spec.md §0): the sum of
--   kontant_bruttolon over all employers of the person in the month, negative
--   corrections kept. A month inside coverage without a row has income 0; such
--   months are not written (the file is sparse), months outside coverage are
--   unobserved.
-- Inputs: agi (lopnr, period, arbetsgivare, kontant_bruttolon), staged.
-- Params: $first_month integer, $last_month integer (AGI coverage, YYYYMM).
-- Output, one row per person and month with at least one AGI row: lopnr, period
--   (YYYYMM), month_index (year * 12 + month - 1), income_sek (SEK, may be
--   negative), n_rows (AGI rows summed: employers and corrections; a distinct
--   employer count would triple the stage's time). Sorted by lopnr, period.
with

agi_in_coverage as (
    select
        lopnr,
        period,
        kontant_bruttolon
    from agi
    where period between $first_month::integer and $last_month::integer
),

final as (
    select
        lopnr,
        period::integer as period,
        ((period // 100) * 12 + period % 100 - 1)::integer as month_index,
        sum(kontant_bruttolon)::bigint as income_sek,
        count(*)::integer as n_rows
    from agi_in_coverage
    group by lopnr, period
)

select * from final
order by lopnr, period
