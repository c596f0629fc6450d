select
    id as assignment_id,
    department_id,
    name as assignment_name,
    abbreviation as assignment_abbreviation,
    assignment_type,
    default_start as default_start_time,
    default_end as default_end_time,
    active as is_active,
    updated_at
from {{ source('lightning_bolt', 'assignments') }}
