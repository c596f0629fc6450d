select
    id as change_id,
    changed_at,
    "user" as changed_by,
    action as change_action,
    entity as changed_entity,
    entity_id as changed_entity_id,
    schedule_id,
    "date" as slot_date,
    field as changed_field,
    old_value,
    new_value
from {{ source('lightning_bolt', 'change_log') }}
