{#-
    Schedule backup (the downtime copy): one row per published slot of every active assignment,
    filled or not, for every loaded date, in the backup's layout. The asset applies the window
    ("today" in each department's own zone, with the one clock) and the settings' departments.
    PROVIDER: the person's or placeholder's name; UNFILLED for an empty slot; for a person
    Lightning Bolt does not know, UNKNOWN PERSON and the id; an inactive person's name marked
    (INACTIVE). The last two are reported as problems too (person_status, person_problem).
-#}
with shifts as (
    select * from {{ ref('int_exports__published_shifts') }}
),

departments as (
    select department_id, department_name from {{ ref('dim_departments') }}
),

assignments as (
    select assignment_id, assignment_name from {{ ref('dim_assignments') }}
),

personnel as (
    select personnel_id, email from {{ ref('dim_personnel') }}
)

select
    shifts.slot_id,
    shifts.department_id,
    shifts.time_zone,
    shifts.slot_date,
    shifts.start_at,
    shifts.local_start_at,
    shifts.local_end_at,
    shifts.person_status,
    shifts.person_problem,
    shifts.personnel_id,
    -- the backup's columns, in its order
    coalesce(departments.department_name, 'Department ' || shifts.department_id) as "DEPARTMENT",
    shifts.slot_date as "DATE",
    coalesce(assignments.assignment_name, 'Assignment ' || shifts.assignment_id) as "ASSIGNMENT",
    strftime(shifts.local_start_at, '%Y-%m-%d %H:%M') as "START",
    strftime(shifts.local_end_at, '%Y-%m-%d %H:%M') as "END",
    case shifts.person_status
        when 'unfilled' then 'UNFILLED'
        when 'unknown_person' then 'UNKNOWN PERSON ' || shifts.personnel_id
        when 'inactive_person' then shifts.display_name || ' (INACTIVE)'
        else shifts.display_name
    end as "PROVIDER",
    shifts.cell_phone as "CELL",
    shifts.pager as "PAGER",
    personnel.email as "EMAIL",
    shifts.notes as "NOTES"
from shifts
left join departments on departments.department_id = shifts.department_id
left join assignments on assignments.assignment_id = shifts.assignment_id
left join personnel on personnel.personnel_id = shifts.personnel_id
