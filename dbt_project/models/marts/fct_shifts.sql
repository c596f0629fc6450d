{#- One row per slot, with real instants; macros/slot_instants.sql says how local times resolve. -#}
with timed as (
    select * from {{ ref('int_slots__timed') }}
),

schedules as (
    select * from {{ ref('stg_lightning_bolt__schedules') }}
),

assignments as (
    select * from {{ ref('stg_lightning_bolt__assignments') }}
),

personnel as (
    select * from {{ ref('stg_lightning_bolt__personnel') }}
)

select
    timed.slot_id,
    timed.schedule_id,
    timed.department_id,
    timed.assignment_id,
    timed.personnel_id,
    timed.slot_date,
    timed.time_zone,
    timed.local_start_time,
    timed.local_end_time,
    timed.local_start_at,
    timed.local_end_at,
    timed.start_at,
    timed.end_at,
    timezone('UTC', timed.start_at) as start_at_utc,
    timezone('UTC', timed.end_at) as end_at_utc,
    round(epoch(timed.end_at - timed.start_at) / 3600.0, 4) as elapsed_hours,
    timed.ends_next_day as is_overnight,
    timed.local_start_time = timed.local_end_time as is_24_hour,
    schedules.schedule_status,
    coalesce(schedules.schedule_status = 'published', false) as is_published,
    timed.personnel_id is not null as is_filled,
    coalesce(personnel.is_placeholder, false) as is_placeholder,
    personnel.personnel_type,
    assignments.assignment_type,
    timed.notes,
    timed.updated_at
from timed
left join schedules on schedules.schedule_id = timed.schedule_id
left join assignments on assignments.assignment_id = timed.assignment_id
left join personnel on personnel.personnel_id = timed.personnel_id
