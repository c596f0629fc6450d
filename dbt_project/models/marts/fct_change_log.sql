select
    change_id,
    changed_at,
    timezone('UTC', changed_at) as changed_at_utc,
    changed_by,
    change_action,
    changed_entity,
    changed_entity_id,
    schedule_id,
    slot_date,
    changed_field,
    old_value,
    new_value
from {{ ref('stg_lightning_bolt__change_log') }}
