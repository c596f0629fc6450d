{#- A view, not a table: problems are recorded by deliveries after dbt builds, and the BI copy
    must show the ledger as it stands. Relations without their database part (dbt-duckdb would
    write the live file's name, e.g. "lb"): the BI copy is always warehouse.duckdb. DuckDB 2.0
    drops a view's own catalog when it stores the view anyway; this does not depend on it. -#}
{{ config(materialized='view') }}

with checks as (
    select * from {{ source('delivery', 'problem_checks').include(database=False) }}
),

problems as (
    select * from {{ source('delivery', 'problems').include(database=False) }}
),

latest_checks as (
    select *
    from checks
    qualify row_number() over (partition by integration, scope order by check_number desc) = 1
),

history as (
    select
        integration,
        scope,
        problem_key,
        min(detected_at) as first_seen_at,
        count(distinct check_id) as times_seen
    from problems
    group by all
),

enabled_integrations as (
    select integration
    from {{ source('config', 'integration_settings').include(database=False) }}
    where enabled
)

select
    p.integration,
    p.scope,
    p.problem_key,
    p.kind,
    p.record,
    p.field,
    p.reason,
    h.first_seen_at,
    c.checked_at as last_seen_at,
    h.times_seen,
    c.run_id,
    c.check_id
from latest_checks as c
inner join problems as p on p.check_id = c.check_id
inner join history as h
    on h.integration = p.integration and h.scope = p.scope and h.problem_key = p.problem_key
inner join enabled_integrations as e on e.integration = c.integration
-- the same problem twice in one check (it should not happen) is still one open problem
qualify row_number() over (partition by p.problem_key order by p.reason) = 1
