select
    personnel_id || '/' || tally_name || '/' || period_start as tally_key,
    personnel_id,
    tally_name,
    period_start,
    period_end,
    tally_value
from {{ ref('stg_lightning_bolt__tallies') }}
