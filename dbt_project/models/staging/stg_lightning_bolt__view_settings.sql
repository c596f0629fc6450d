select
    id as view_setting_id,
    name as view_name,
    owner as view_owner,
    settings as view_settings
from {{ source('lightning_bolt', 'view_settings') }}
