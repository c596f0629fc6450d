select
    department_id,
    department_name,
    time_zone,
    coid,
    kronos_department_id,
    kronos_department_id is not null as has_kronos_department_id
from {{ ref('stg_lightning_bolt__departments') }}
