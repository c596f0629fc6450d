{#- A view over the ledger (deliveries happen after dbt builds); no database part in the
    relations, so it reads in the BI copy too (see fct_open_problems). -#}
{{ config(materialized='view') }}

select
    l.delivery_id,
    l.integration,
    l.scope,
    l.file_name,
    l.target,
    l.location,
    l.rows,
    l.bytes,
    l.sha256,
    l.status,
    l.error,
    c.problems,
    l.run_id,
    l.delivered_at,
    c.check_number as recorded_order
from {{ source('delivery', 'ledger').include(database=False) }} as l
left join {{ source('delivery', 'problem_checks').include(database=False) }} as c
    on c.check_id = l.delivery_id
