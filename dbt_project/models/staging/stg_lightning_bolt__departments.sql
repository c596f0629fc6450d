select
    id as department_id,
    name as department_name,
    timezone as time_zone,
    coid,
    kronos_department_id
from {{ source('lightning_bolt', 'departments') }}
