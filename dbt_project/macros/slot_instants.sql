{#-
    Real start and end instants for the slots in `slots_relation` (any relation with the
    staging slot columns: slot_id, schedule_id, assignment_id, slot_date, local_start_time,
    local_end_time). All its columns are kept; added: department_id, time_zone, ends_next_day,
    local_start_at, local_end_at (local wall clock), start_at and end_at (instants).

    Local wall-clock = the slot's date + its HH:MM, in the time zone of the slot's department
    (the schedule's department; the assignment's when the schedule is unknown). An end at or
    before the start is on the next day, so a 24-hour slot (start = end) ends the next day at
    the same wall-clock time. Local times become instants with DuckDB's ICU time zones:
    - a time that does not exist (spring forward, 02:00-02:59) is read with the offset in
      force before the change, i.e. it lands one hour later on the clock (02:30 -> 03:30 CDT);
    - a time that exists twice (fall back, 01:00-01:59) is the second one, in standard time.
    Hours are then the real elapsed time between the instants: a 17:00-07:00 call is 13 h on
    the spring-forward night and 15 h on the fall-back night in Chicago, 14 h in Phoenix.
-#}
{% macro slot_instants(slots_relation) %}
    with slots as (
        select * from {{ slots_relation }}
    ),

    schedules as (
        select schedule_id, department_id from {{ ref('stg_lightning_bolt__schedules') }}
    ),

    assignments as (
        select assignment_id, department_id from {{ ref('stg_lightning_bolt__assignments') }}
    ),

    departments as (
        select department_id, time_zone from {{ ref('stg_lightning_bolt__departments') }}
    ),

    located as (
        select
            slots.*,
            coalesce(schedules.department_id, assignments.department_id) as department_id,
            slots.local_end_time <= slots.local_start_time as ends_next_day
        from slots
        left join schedules on schedules.schedule_id = slots.schedule_id
        left join assignments on assignments.assignment_id = slots.assignment_id
    ),

    local_times as (
        select
            located.*,
            departments.time_zone,
            slot_date + cast(local_start_time as time) as local_start_at,
            slot_date + cast(ends_next_day as integer) + cast(local_end_time as time) as local_end_at
        from located
        left join departments on departments.department_id = located.department_id
    )

    select
        *,
        timezone(time_zone, local_start_at) as start_at,
        timezone(time_zone, local_end_at) as end_at
    from local_times
{% endmacro %}
