select
    id as slot_id,
    schedule_id,
    "date" as slot_date,
    assignment_id,
    personnel_id,
    start_time as local_start_time,
    end_time as local_end_time,
    notes,
    updated_at
from {{ source('lightning_bolt', 'slots') }}
