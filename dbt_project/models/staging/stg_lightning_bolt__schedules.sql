select
    id as schedule_id,
    department_id,
    start_date as schedule_start_date,
    end_date as schedule_end_date,
    status as schedule_status,
    published_at,
    version as schedule_version
from {{ source('lightning_bolt', 'schedules') }}
