{#-
    AnesthesiaGo: one row per published slot of a mapped assignment (one mapping row per
    assignment), for every loaded date, with what a provider entry of the date's schedule says:
    the local date (slot_date: the date the slot belongs to), start and end on the department's
    wall clock and in UTC. The asset chooses the window's dates with the one clock, takes emp_id
    from the configured personnel id field and sends one schedule per date.
    outcome: deliver | coverage_gap (unfilled: not sent, counted) | placeholder (not sent,
    counted) | problem (an unknown or inactive person, with a reason).
-#}
with shifts as (
    select * from {{ ref('int_exports__published_shifts') }}
),

mapping as (
    select * from {{ source('anesthesiago', 'mapping') }}
)

select
    shifts.slot_id,
    mapping.mapping_line,
    shifts.department_id,
    shifts.assignment_id,
    shifts.time_zone,
    shifts.slot_date,
    shifts.start_at,
    {{ shift_person_columns('shifts') }},
    strftime(shifts.local_start_at, '%Y-%m-%dT%H:%M:%S') as start_local,
    strftime(shifts.local_end_at, '%Y-%m-%dT%H:%M:%S') as end_local,
    strftime(shifts.start_at_utc, '%Y-%m-%dT%H:%M:%SZ') as start_utc,
    strftime(shifts.end_at_utc, '%Y-%m-%dT%H:%M:%SZ') as end_utc
from shifts
inner join mapping on mapping.assignment_id = shifts.assignment_id
