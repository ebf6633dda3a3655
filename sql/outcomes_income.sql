-- Purpose: return-to-income outcomes per spell (analysis-spec.md §4.4): reference
--   income, income before, any / regained income within X months after the spell,
--   durable income. Months are month indices (year * 12 + month - 1); s = start
--   month, f = first month after the spell ($window_offset: 1 = the month after
--   the end month, 0 = the end month itself).
-- Inputs: spells (spell_id, lopnr, start, "end"); income (lopnr, month_index,
--   income_sek), the sparse person-month file of sql/income_monthly.sql.
-- Params: $first_index, $last_index integer (AGI coverage); $ref_months integer (3);
--   $window_offset integer; $max_window integer (12); $share double (0.90);
--   $min_sek double (1); $unobserved_zero boolean; $durable_start integer (12: the
--   durable window starts at f + 12); $durable_length integer (12, or large for "to
--   the data end").
-- Output, one row per spell: spell_id, s_index, f_index, ref_months_observed,
--   ref_income_sek, ref_positive_months, income_before, no_income_before, first_income_k,
--   first_regained_k, window_income_sek and window_k (the rows with k < $max_window,
--   for the mean-of-window rule), durable_any_run and durable_regained_run (longest
--   run of consecutive qualifying months in the durable window). k = months after f
--   (0 = f itself); null = no such month.
with

spell as (
    select
        spell_id,
        lopnr,
        (year(start) * 12 + month(start) - 1)::integer as s_index,
        (year("end") * 12 + month("end") - 1 + $window_offset::integer)::integer as f_index
    from spells
),

reference as (
    select
        spell.spell_id,
        greatest(
            0,
            least(spell.s_index - 1, $last_index::integer)
            - greatest(spell.s_index - $ref_months::integer, $first_index::integer) + 1
        ) as ref_months_observed,
        coalesce(sum(income.income_sek), 0) as ref_sum_sek,
        coalesce(max(income.income_sek), 0) as ref_max_sek,
        count(*) filter (where income.income_sek >= $min_sek::double) as ref_positive_months
    from spell
    left join income
        on
            income.lopnr = spell.lopnr
            and income.month_index
            between spell.s_index - $ref_months::integer and spell.s_index - 1
    group by spell.spell_id, spell.s_index
),

reference_income as (
    select
        spell_id,
        ref_months_observed,
        ref_positive_months,
        case
            when $unobserved_zero::boolean then ref_sum_sek / $ref_months::integer
            when ref_months_observed > 0 then ref_sum_sek / ref_months_observed
        end as ref_income_sek,
        case
            when ref_max_sek >= $min_sek::double then true
            when $unobserved_zero::boolean or ref_months_observed = $ref_months::integer then false
        end as income_before
    from reference
),

after_spell as (
    select
        spell.spell_id,
        spell.f_index,
        income.month_index - spell.f_index as k,
        income.income_sek
    from spell
    inner join income
        on
            income.lopnr = spell.lopnr
            and income.month_index
            between spell.f_index
            and spell.f_index + $durable_start::integer + $durable_length::integer - 1
),

first_months as (
    select
        after_spell.spell_id,
        min(after_spell.k) filter (
            where after_spell.k < $max_window::integer
            and after_spell.income_sek >= $min_sek::double
        ) as first_income_k,
        min(after_spell.k) filter (
            where after_spell.k < $max_window::integer
            and reference_income.ref_income_sek > 0
            and after_spell.income_sek >= $share::double * reference_income.ref_income_sek
        ) as first_regained_k,
        list(after_spell.income_sek order by after_spell.k) filter (
            where after_spell.k < $max_window::integer
        ) as window_income_sek,
        list(after_spell.k order by after_spell.k) filter (
            where after_spell.k < $max_window::integer
        ) as window_k
    from after_spell
    inner join reference_income on after_spell.spell_id = reference_income.spell_id
    group by after_spell.spell_id
),

durable_months as (
    select
        after_spell.spell_id,
        after_spell.k,
        after_spell.income_sek >= $min_sek::double as is_any,
        (
            reference_income.ref_income_sek > 0
            and after_spell.income_sek >= $share::double * reference_income.ref_income_sek
        ) as is_regained
    from after_spell
    inner join reference_income on after_spell.spell_id = reference_income.spell_id
    where after_spell.k >= $durable_start::integer
),

durable_islands as (
    select
        spell_id,
        k - row_number() over (partition by spell_id, is_any order by k) as any_island,
        k - row_number() over (partition by spell_id, is_regained order by k) as regained_island,
        is_any,
        is_regained
    from durable_months
),

durable_any as (
    select
        spell_id,
        max(run) as durable_any_run
    from (
        select
            spell_id,
            count(*) as run
        from durable_islands
        where is_any
        group by spell_id, any_island
    )
    group by spell_id
),

durable_regained as (
    select
        spell_id,
        max(run) as durable_regained_run
    from (
        select
            spell_id,
            count(*) as run
        from durable_islands
        where is_regained
        group by spell_id, regained_island
    )
    group by spell_id
),

final as (
    select
        spell.spell_id,
        spell.s_index,
        spell.f_index,
        reference_income.ref_months_observed::integer as ref_months_observed,
        reference_income.ref_income_sek::double as ref_income_sek,
        reference_income.ref_positive_months::integer as ref_positive_months,
        reference_income.income_before,
        reference_income.income_before = false as no_income_before,
        first_months.first_income_k::integer as first_income_k,
        first_months.first_regained_k::integer as first_regained_k,
        first_months.window_income_sek,
        first_months.window_k,
        coalesce(durable_any.durable_any_run, 0)::integer as durable_any_run,
        coalesce(durable_regained.durable_regained_run, 0)::integer as durable_regained_run
    from spell
    inner join reference_income on spell.spell_id = reference_income.spell_id
    left join first_months on spell.spell_id = first_months.spell_id
    left join durable_any on spell.spell_id = durable_any.spell_id
    left join durable_regained on spell.spell_id = durable_regained.spell_id
)

select * from final
order by spell_id
