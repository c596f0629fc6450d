{#-
    Resident duty intervals: one row per slot that counts toward ACGME duty hours.

    Duty = a filled slot of a published schedule, held by a resident (not a placeholder), whose
    assignment is not Off, with real start and end instants. A slot belongs to the Monday-Sunday
    week of its local start date. The local days it touches are kept for counting days off: an
    interval ending exactly at local midnight does not touch the next day.
-#}
with shifts as (
    select * from {{ ref('fct_shifts') }}
)

select
    personnel_id,
    slot_id,
    slot_date,
    cast(date_trunc('week', slot_date) as date) as week_start,
    local_start_at,
    local_end_at,
    start_at,
    end_at,
    elapsed_hours,
    cast(local_start_at as date) as first_local_day,
    cast(local_end_at as date)
        - cast(cast(local_end_at as time) = time '00:00' as integer) as last_local_day
from shifts
where is_filled
    and is_published
    and personnel_type = 'Resident'
    and not is_placeholder
    and assignment_type is distinct from 'Off'
    and start_at is not null
    and end_at is not null
