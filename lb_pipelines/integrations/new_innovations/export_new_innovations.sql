{#-
    New Innovations duty hours: one row per published slot of a mapped assignment, in the
    vendor's layout, for every loaded date. The asset applies the window (from today -
    days_back on, no forward edge) with the one clock, picks PERSON_ID from the configured
    personnel id field, and computes ADD/UPDATE/DELETE against the last delivered file.
    outcome: deliver | coverage_gap (unfilled: not a row, counted) | placeholder (not a
    resident: not a row, counted) | problem (with a reason).
-#}
with shifts as (
    select * from {{ ref('int_exports__published_shifts') }}
),

mapping as (
    select * from {{ source('new_innovations', 'mapping') }}
),

assignments as (
    select assignment_id, assignment_name from {{ ref('dim_assignments') }}
)

select
    shifts.slot_id,
    shifts.slot_date,
    shifts.time_zone,
    {{ shift_person_columns('shifts') }},
    -- the vendor's columns (ACTION, SLOT_ID and PERSON_ID come from the asset)
    mapping.duty_hour_name as "DUTY_HOUR_NAME",
    coalesce(nullif(mapping.ni_assignment_name, ''), assignments.assignment_name) as "ASSIGNMENT_NAME",
    strftime(shifts.local_start_at, '%Y-%m-%d %H:%M') as "START",
    strftime(shifts.local_end_at, '%Y-%m-%d %H:%M') as "END",
    mapping.location as "LOCATION",
    case
        when nullif(mapping.notes, '') is not null and nullif(shifts.notes, '') is not null
            then mapping.notes || ' - ' || shifts.notes
        else coalesce(nullif(mapping.notes, ''), nullif(shifts.notes, ''))
    end as "NOTES"
from shifts
inner join mapping on mapping.assignment_id = shifts.assignment_id
inner join assignments on assignments.assignment_id = shifts.assignment_id
