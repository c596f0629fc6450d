{#-
    Epic On-Call Finder: one row per published slot of a mapped assignment x mapping row, in
    Epic's layout, for every loaded date (the asset applies the window with the one clock and
    picks PROVIDER_ID from the configured personnel id field).
    outcome: deliver | coverage_gap (unfilled: not a row, counted) | problem (with a reason).
    Placeholders are delivered with their own name and contact.
-#}
with shifts as (
    select * from {{ ref('int_exports__published_shifts') }}
),

mapping as (
    select * from {{ source('epic_on_call_finder', 'mapping') }}
)

select
    shifts.slot_id,
    mapping.mapping_line,
    shifts.department_id,
    shifts.time_zone,
    shifts.slot_date,
    shifts.start_at,
    {{ shift_person_columns('shifts', placeholder_outcome="'deliver'") }},
    shifts.is_placeholder,
    -- Epic's columns, in Epic's order
    mapping.epic_team_id as "TEAM_ID",
    mapping.team_name as "TEAM_NAME",
    mapping.role as "ROLE",
    mapping.call_order as "CALL_ORDER",
    strftime(shifts.local_start_at, '%m/%d/%Y %H:%M') as "START",
    strftime(shifts.local_end_at, '%m/%d/%Y %H:%M') as "END",
    shifts.display_name as "PROVIDER_NAME",
    coalesce(nullif(shifts.pager, ''), nullif(shifts.cell_phone, '')) as "CONTACT",
    case
        when nullif(mapping.note_prefix, '') is not null and nullif(shifts.notes, '') is not null
            then mapping.note_prefix || ' - ' || shifts.notes
        else coalesce(nullif(mapping.note_prefix, ''), nullif(shifts.notes, ''), '')
    end as "NOTES",
    mapping.team_comment as "TEAM_COMMENT"
from shifts
inner join mapping on mapping.assignment_id = shifts.assignment_id
