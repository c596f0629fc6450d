{#-
    One row per version of a slot, with real instants: the schedule as it stood at any moment.
    "Who was on call at 03:00 last Tuesday, as the schedule stood at noon that day":
        where valid_from <= noon and (valid_to is null or valid_to > noon)
          and start_at <= three_am and end_at > three_am
-#}
with versions as (
    {{ slot_instants(ref('slots_snapshot')) }}
)

select
    dbt_scd_id as slot_version_id,
    slot_id,
    schedule_id,
    department_id,
    assignment_id,
    personnel_id,
    slot_date,
    time_zone,
    local_start_time,
    local_end_time,
    start_at,
    end_at,
    round(epoch(end_at - start_at) / 3600.0, 4) as elapsed_hours,
    notes,
    dbt_valid_from as valid_from,
    dbt_valid_to as valid_to,
    dbt_valid_to is null as is_current
from versions
