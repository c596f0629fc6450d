select
    personnel_id,
    tally_name,
    period_start,
    period_end,
    value as tally_value
from {{ source('lightning_bolt', 'tallies') }}
