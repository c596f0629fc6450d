select
    request_id,
    personnel_id,
    request_type,
    request_status,
    request_status = 'approved' as is_approved,
    request_start_date,
    request_end_date,
    datediff('day', request_start_date, request_end_date) + 1 as requested_days,
    created_at,
    updated_at
from {{ ref('stg_lightning_bolt__requests') }}
