{#-
    Epic On-Call Finder: one row per published slot of a mapped assignment x mapping row, in
    Epic's layout, for every loaded date (the asset applies the window with the one clock and
    picks PROVIDER_ID from the configured personnel id field).
    outcome: deliver | coverage_gap (unfilled: not a row, counted) | problem (with a reason).
-#}
with shifts as (
    select * from {{ ref('fct_shifts') }}
    where is_published
),

mapping as (
    select * from {{ source('config', 'epic_on_call_finder__mapping') }}
),

personnel as (
    select * from {{ ref('dim_personnel') }}
),

assignments as (
    select assignment_id, is_active from {{ ref('dim_assignments') }}
)

select
    shifts.slot_id,
    mapping.mapping_line,
    shifts.department_id,
    shifts.time_zone,
    shifts.slot_date,
    shifts.start_at,
    case
        when shifts.personnel_id is null then 'coverage_gap'
        when personnel.personnel_id is null then 'problem'
        when not personnel.is_active then 'problem'
        else 'deliver'
    end as outcome,
    case
        when shifts.personnel_id is not null and personnel.personnel_id is null
            then 'personnel_id ' || shifts.personnel_id || ' is not in Lightning Bolt''s personnel'
        when not personnel.is_active then 'person ' || shifts.personnel_id || ' is inactive'
    end as problem_reason,
    coalesce(personnel.is_placeholder, false) as is_placeholder,
    personnel.unique_id,
    personnel.custom1,
    personnel.custom2,
    personnel.custom3,
    personnel.custom4,
    personnel.emp_id,
    -- Epic's columns, in Epic's order
    mapping.epic_team_id as "TEAM_ID",
    mapping.team_name as "TEAM_NAME",
    mapping.role as "ROLE",
    mapping.call_order as "CALL_ORDER",
    strftime(shifts.local_start_at, '%m/%d/%Y %H:%M') as "START",
    strftime(shifts.local_end_at, '%m/%d/%Y %H:%M') as "END",
    personnel.display_name as "PROVIDER_NAME",
    coalesce(nullif(personnel.pager, ''), nullif(personnel.cell_phone, '')) as "CONTACT",
    case
        when nullif(mapping.note_prefix, '') is not null and nullif(shifts.notes, '') is not null
            then mapping.note_prefix || ' - ' || shifts.notes
        else coalesce(nullif(mapping.note_prefix, ''), nullif(shifts.notes, ''), '')
    end as "NOTES",
    mapping.team_comment as "TEAM_COMMENT"
from shifts
inner join mapping on mapping.assignment_id = shifts.assignment_id
inner join assignments on assignments.assignment_id = shifts.assignment_id
left join personnel on personnel.personnel_id = shifts.personnel_id
where assignments.is_active
