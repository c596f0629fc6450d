{#-
    What every vendor export starts from: published slots of active assignments, with the
    person's ids and contact details, and whether the slot can go out as a person's shift.
    person_status: filled | unfilled | placeholder | unknown_person | inactive_person.
    Inactive assignments keep their history but leave no new exports, so they are not here.
-#}
with shifts as (
    select * from {{ ref('fct_shifts') }}
    where is_published
),

personnel as (
    select * from {{ ref('dim_personnel') }}
),

assignments as (
    select assignment_id, is_active from {{ ref('dim_assignments') }}
)

select
    shifts.*,
    case
        when shifts.personnel_id is null then 'unfilled'
        when personnel.personnel_id is null then 'unknown_person'
        when not personnel.is_active then 'inactive_person'
        when personnel.is_placeholder then 'placeholder'
        else 'filled'
    end as person_status,
    case
        when shifts.personnel_id is not null and personnel.personnel_id is null
            then 'personnel_id ' || shifts.personnel_id || ' is not in Lightning Bolt''s personnel'
        when not personnel.is_active then 'person ' || shifts.personnel_id || ' is inactive'
    end as person_problem,
    personnel.display_name,
    personnel.unique_id,
    personnel.custom1,
    personnel.custom2,
    personnel.custom3,
    personnel.custom4,
    personnel.emp_id,
    personnel.pager,
    personnel.cell_phone
from shifts
inner join assignments on assignments.assignment_id = shifts.assignment_id
left join personnel on personnel.personnel_id = shifts.personnel_id
where assignments.is_active
