{#- Every resident has a row for each week from their first to their last duty week, none missing. -#}
select
    personnel_id,
    min(week_start) as first_week,
    max(week_start) as last_week,
    count(*) as weeks
from {{ ref('fct_duty_hours') }}
group by personnel_id
having count(*) <> (max(week_start) - min(week_start)) // 7 + 1
