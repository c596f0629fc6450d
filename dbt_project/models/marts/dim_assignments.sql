with assignments as (
    select * from {{ ref('stg_lightning_bolt__assignments') }}
),

departments as (
    select * from {{ ref('stg_lightning_bolt__departments') }}
)

select
    assignments.assignment_id,
    assignments.assignment_name,
    assignments.assignment_abbreviation,
    assignments.assignment_type,
    assignments.department_id,
    departments.department_name,
    departments.time_zone,
    assignments.default_start_time,
    assignments.default_end_time,
    assignments.default_end_time <= assignments.default_start_time as is_overnight_by_default,
    assignments.default_end_time = assignments.default_start_time as is_24_hour_by_default,
    assignments.is_active,
    assignments.updated_at
from assignments
left join departments on departments.department_id = assignments.department_id
