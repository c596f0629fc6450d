{#-
    Resident duty hours per week, checked against the four ACGME limits; one row per resident
    per Monday-Sunday week. The rules, how they are measured and the flags are described in
    _duty_hours.yml (and so in the dbt docs site).
-#}
with intervals as (
    select * from {{ ref('int_duty_hours__intervals') }}
),

stretches as (
    select * from {{ ref('int_duty_hours__stretches') }}
),

-- every week from each resident's first to last duty week, so weeks without duty count as 0
spine as (
    select
        personnel_id,
        cast(unnest(generate_series(min(week_start), max(week_start), interval 7 day)) as date) as week_start
    from intervals
    group by personnel_id
),

weekly_duty as (
    select
        personnel_id,
        week_start,
        sum(elapsed_hours) as duty_hours,
        count(*) as shifts
    from intervals
    group by personnel_id, week_start
),

-- local calendar days on which some duty interval touches [00:00, 24:00)
duty_days as (
    select distinct
        personnel_id,
        cast(unnest(generate_series(first_local_day, last_local_day, interval 1 day)) as date) as duty_day
    from intervals
),

weekly_duty_days as (
    select
        personnel_id,
        cast(date_trunc('week', duty_day) as date) as week_start,
        count(*) as days_on_duty
    from duty_days
    group by personnel_id, week_start
),

weekly_stretches as (
    select
        personnel_id,
        week_start,
        max(stretch_hours) as longest_continuous_hours,
        min(rest_before_hours) as shortest_rest_hours
    from stretches
    group by personnel_id, week_start
),

weeks as (
    select
        spine.personnel_id,
        spine.week_start,
        spine.week_start + 6 as week_end,
        round(coalesce(weekly_duty.duty_hours, 0), 4) as duty_hours,
        coalesce(weekly_duty.shifts, 0) as shifts,
        7 - coalesce(weekly_duty_days.days_on_duty, 0) as days_off,
        weekly_stretches.longest_continuous_hours,
        weekly_stretches.shortest_rest_hours
    from spine
    left join weekly_duty
        on weekly_duty.personnel_id = spine.personnel_id
        and weekly_duty.week_start = spine.week_start
    left join weekly_duty_days
        on weekly_duty_days.personnel_id = spine.personnel_id
        and weekly_duty_days.week_start = spine.week_start
    left join weekly_stretches
        on weekly_stretches.personnel_id = spine.personnel_id
        and weekly_stretches.week_start = spine.week_start
),

rolling as (
    select
        *,
        round(avg(duty_hours) over last_4_weeks, 4) as rolling_4wk_avg_hours,
        round(avg(days_off) over last_4_weeks, 4) as rolling_4wk_avg_days_off,
        count(*) over last_4_weeks as weeks_in_average
    from weeks
    -- the spine is dense, so the 3 preceding rows are the 3 preceding weeks
    window last_4_weeks as (
        partition by personnel_id order by week_start rows between 3 preceding and current row
    )
),

flagged as (
    select
        *,
        rolling_4wk_avg_hours > 80 as exceeds_80_hours,
        rolling_4wk_avg_days_off < 1 as lacks_day_off_in_7,
        coalesce(longest_continuous_hours > 28, false) as exceeds_28_continuous,
        coalesce(shortest_rest_hours < 8, false) as short_rest
    from rolling
)

select
    personnel_id,
    week_start,
    week_end,
    duty_hours,
    cast(shifts as integer) as shifts,
    cast(days_off as integer) as days_off,
    longest_continuous_hours,
    shortest_rest_hours,
    rolling_4wk_avg_hours,
    rolling_4wk_avg_days_off,
    cast(weeks_in_average as integer) as weeks_in_average,
    exceeds_80_hours,
    lacks_day_off_in_7,
    exceeds_28_continuous,
    short_rest,
    not (exceeds_80_hours or lacks_day_off_in_7 or exceeds_28_continuous or short_rest) as is_compliant
from flagged
