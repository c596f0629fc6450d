select
    personnel_id,
    case
        when first_name is null then last_name
        else first_name || ' ' || last_name
    end as display_name,
    first_name,
    last_name,
    abbreviation,
    personnel_type,
    is_placeholder,
    is_active,
    emp_id,
    unique_id,
    custom1,
    custom2,
    custom3,
    custom4,
    email,
    cell_phone,
    pager,
    department_ids,
    home_coid,
    away_coid,
    updated_at
from {{ ref('stg_lightning_bolt__personnel') }}
