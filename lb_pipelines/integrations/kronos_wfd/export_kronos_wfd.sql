{#-
    Kronos Workforce Dimensions: one row per published slot of a mapped assignment, in the
    vendor's layout, for every loaded date. The asset picks the pay period, the configured
    PERSON_NUMBER field and the labor-category delimiter, and computes ADD/UPDATE/DELETE
    against the last delivered file.
    outcome: deliver | open_shift (unfilled, mapped as an open shift: goes out without a person)
           | coverage_gap (unfilled otherwise: not a row, counted) | placeholder (not a person:
           not a row) | problem (with a reason).
-#}
with shifts as (
    select * from {{ ref('int_exports__published_shifts') }}
),

mapping as (
    select * from {{ source('kronos_wfd', 'mapping') }}
)

select
    shifts.slot_id,
    shifts.slot_date,
    {{ shift_person_columns('shifts', unfilled_outcome="case when mapping.open_shift then 'open_shift' else 'coverage_gap' end") }},
    mapping.labor_categories,
    -- the vendor's columns (ACTION, SLOT_ID, PERSON_NUMBER and LABOR_CATEGORIES come from the asset)
    strftime(shifts.slot_date, '%Y-%m-%d') as "SHIFT_DATE",
    strftime(shifts.local_start_at, '%Y-%m-%dT%H:%M') as "START",
    strftime(shifts.local_end_at, '%Y-%m-%dT%H:%M') as "END",
    mapping.segment_type as "SEGMENT_TYPE",
    mapping.work_rule_transfer as "WORK_RULE_TRANSFER",
    mapping.pay_code_edit as "PAY_CODE_EDIT",
    case when shifts.person_status = 'unfilled' and mapping.open_shift then 'Y' else 'N' end as "OPEN_SHIFT",
    mapping.business_structure as "BUSINESS_STRUCTURE",
    mapping.cost_center_transfer as "COST_CENTER_TRANSFER",
    mapping.comment as "COMMENT"
from shifts
inner join mapping on mapping.assignment_id = shifts.assignment_id
