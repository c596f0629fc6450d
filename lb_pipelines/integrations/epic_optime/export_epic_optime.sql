{#-
    Epic OpTime: one row per published slot of a mapped assignment (one mapping row per
    assignment), in OpTime's layout, for every loaded date (the asset applies the window with
    the one clock and picks SER_ID from the configured personnel id field).
    outcome: deliver | coverage_gap (unfilled: not a row, counted) | placeholder (no provider
    to schedule: not a row, counted) | problem (with a reason).
    START/END: the mapping row's time zone, when set, read from the real instants (so a slot
    across a daylight-saving night keeps its real length); else the department's wall clock.
-#}
with shifts as (
    select * from {{ ref('int_exports__published_shifts') }}
),

assignments as (
    select assignment_id, assignment_name from {{ ref('dim_assignments') }}
),

mapping as (
    select * from {{ source('epic_optime', 'mapping') }}
)

select
    shifts.slot_id,
    mapping.mapping_line,
    shifts.department_id,
    shifts.time_zone,
    shifts.slot_date,
    shifts.start_at,
    shifts.end_at,
    {{ shift_person_columns('shifts') }},
    mapping.timezone as mapping_time_zone,
    -- OpTime's columns, in OpTime's order (SER_ID comes from the asset)
    mapping.import_group as "IMPORT_GROUP",
    mapping.resource_type_id as "RESOURCE_TYPE_ID",
    shifts.display_name as "PROVIDER_NAME",
    mapping.role as "ROLE",
    assignments.assignment_name as "ASSIGNMENT",
    strftime(
        case when mapping.timezone is null then shifts.local_start_at
             else timezone(mapping.timezone, shifts.start_at) end,
        '%Y-%m-%d %H:%M'
    ) as "START",
    strftime(
        case when mapping.timezone is null then shifts.local_end_at
             else timezone(mapping.timezone, shifts.end_at) end,
        '%Y-%m-%d %H:%M'
    ) as "END"
from shifts
inner join mapping on mapping.assignment_id = shifts.assignment_id
left join assignments on assignments.assignment_id = shifts.assignment_id
