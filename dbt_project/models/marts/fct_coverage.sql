{#-
    Coverage problems a scheduler must look at, one row per problem:
    - unfilled: a slot with nobody in it (Off assignments excluded: they are time off, not work);
    - double_booked: the same person in two slots whose real times overlap (one row per pair,
      on the lower slot id; placeholders excluded: a placeholder may cover many slots at once);
    - scheduled_during_request: a person working (not an Off slot) on a date inside their own
      approved request.
    Drafts are included (that is when schedulers fix these); filter on is_published.
-#}
with shifts as (
    select * from {{ ref('fct_shifts') }}
    where assignment_type is distinct from 'Off'
),

requests as (
    select * from {{ ref('stg_lightning_bolt__requests') }}
    where request_status = 'approved'
),

unfilled as (
    select
        'unfilled' as coverage_issue,
        slot_id,
        cast(null as bigint) as other_slot_id,
        cast(null as bigint) as request_id,
        shifts.*
    exclude (slot_id)
    from shifts
    where not is_filled
),

double_booked as (
    select
        'double_booked' as coverage_issue,
        a.slot_id,
        b.slot_id as other_slot_id,
        cast(null as bigint) as request_id,
        a.* exclude (slot_id)
    from shifts as a
    inner join shifts as b
        on a.personnel_id = b.personnel_id
        and a.slot_id < b.slot_id
        -- no slot is longer than a day and a bit: only neighbouring dates can overlap
        and b.slot_date between a.slot_date - 2 and a.slot_date + 2
        and a.start_at < b.end_at
        and b.start_at < a.end_at
    where a.is_filled and not a.is_placeholder
),

during_request as (
    select
        'scheduled_during_request' as coverage_issue,
        shifts.slot_id,
        cast(null as bigint) as other_slot_id,
        requests.request_id,
        shifts.* exclude (slot_id)
    from shifts
    inner join requests
        on requests.personnel_id = shifts.personnel_id
        and shifts.slot_date between requests.request_start_date and requests.request_end_date
    where shifts.is_filled and not shifts.is_placeholder
),

issues as (
    select * from unfilled
    union all by name
    select * from double_booked
    union all by name
    select * from during_request
)

select
    coverage_issue || '/' || slot_id || '/' || coalesce(cast(other_slot_id as varchar), '')
        || '/' || coalesce(cast(request_id as varchar), '') as coverage_issue_key,
    coverage_issue,
    slot_id,
    other_slot_id,
    request_id,
    personnel_id,
    department_id,
    assignment_id,
    schedule_id,
    slot_date,
    start_at,
    end_at,
    is_published
from issues
