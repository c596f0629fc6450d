select
    id as request_id,
    personnel_id,
    start_date as request_start_date,
    end_date as request_end_date,
    request_type,
    status as request_status,
    created_at,
    updated_at
from {{ source('lightning_bolt', 'requests') }}
