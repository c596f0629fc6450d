{#- fct_duty_hours has one row per resident per week: fails for every (personnel_id, week_start) seen twice. -#}
select
    personnel_id,
    week_start,
    count(*) as rows_for_week
from {{ ref('fct_duty_hours') }}
group by personnel_id, week_start
having count(*) > 1
