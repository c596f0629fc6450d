{#-
    Outlook: one row per published slot of an assignment mapped with send_to_outlook, for every
    loaded date, with the event it becomes (subject, body as the mapping's switches say, showAs)
    and its real instants in UTC. The asset applies the window with the one clock, picks the
    mailbox from the configured personnel id field and pushes the differences.
    outcome: deliver | coverage_gap (unfilled: no event) | placeholder (nobody's calendar: no
    event) | problem (an unknown or inactive person, with a reason).
-#}
with shifts as (
    select * from {{ ref('int_exports__published_shifts') }}
),

assignments as (
    select assignment_id, assignment_name, department_name from {{ ref('dim_assignments') }}
),

mapping as (
    select * from {{ source('outlook', 'mapping') }}
    where send_to_outlook
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
    assignments.assignment_name as subject,
    concat_ws(
        chr(10),
        case when mapping.include_assignment_info
            then assignments.assignment_name || coalesce(', ' || assignments.department_name, '') end,
        case when mapping.include_schedule_notes then nullif(trim(shifts.notes), '') end
    ) as body,
    case when mapping.send_as_free then 'free' else 'busy' end as show_as,
    strftime(shifts.start_at_utc, '%Y-%m-%dT%H:%M:%S') as start_utc,
    strftime(shifts.end_at_utc, '%Y-%m-%dT%H:%M:%S') as end_utc
from shifts
inner join mapping on mapping.assignment_id = shifts.assignment_id
left join assignments on assignments.assignment_id = shifts.assignment_id
