{#-
    TigerConnect: one row per published slot of a mapped assignment x mapping row (one assignment
    may feed several job tokens), for every loaded date, with the CSV columns it becomes:
    JOB_TOKEN, and START/END as YYYY-MM-DD HH:MM on the department's wall clock (the zone goes in
    the upload's TT-X-Timezone header). The asset applies the window with the one clock, takes
    USER_ID from the configured personnel id field and uploads one CSV per time zone.
    outcome: deliver | coverage_gap (unfilled: not a row, counted) | placeholder (not a row,
    counted) | problem (an unknown or inactive person, with a reason).
-#}
with shifts as (
    select * from {{ ref('int_exports__published_shifts') }}
),

mapping as (
    select * from {{ source('tigerconnect', 'mapping') }}
)

select
    shifts.slot_id,
    mapping.mapping_line,
    shifts.department_id,
    shifts.time_zone,
    shifts.slot_date,
    shifts.start_at,
    {{ shift_person_columns('shifts') }},
    mapping.job_token as "JOB_TOKEN",
    strftime(shifts.local_start_at, '%Y-%m-%d %H:%M') as "START",
    strftime(shifts.local_end_at, '%Y-%m-%d %H:%M') as "END"
from shifts
inner join mapping on mapping.assignment_id = shifts.assignment_id
