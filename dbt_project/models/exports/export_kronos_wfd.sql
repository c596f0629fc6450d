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
    select * from {{ ref('fct_shifts') }}
    where is_published
),

mapping as (
    select * from {{ source('config', 'kronos_wfd__mapping') }}
),

personnel as (
    select * from {{ ref('dim_personnel') }}
),

assignments as (
    select assignment_id, is_active from {{ ref('dim_assignments') }}
)

select
    shifts.slot_id,
    shifts.slot_date,
    case
        when shifts.personnel_id is null and mapping.open_shift then 'open_shift'
        when shifts.personnel_id is null then 'coverage_gap'
        when personnel.personnel_id is null then 'problem'
        when personnel.is_placeholder then 'placeholder'
        when not personnel.is_active then 'problem'
        else 'deliver'
    end as outcome,
    case
        when shifts.personnel_id is not null and personnel.personnel_id is null
            then 'personnel_id ' || shifts.personnel_id || ' is not in Lightning Bolt''s personnel'
        when not personnel.is_active then 'person ' || shifts.personnel_id || ' is inactive'
    end as problem_reason,
    personnel.display_name,
    personnel.unique_id,
    personnel.custom1,
    personnel.custom2,
    personnel.custom3,
    personnel.custom4,
    personnel.emp_id,
    mapping.labor_categories,
    -- the vendor's columns (ACTION, PERSON_NUMBER and LABOR_CATEGORIES are added by the asset)
    strftime(shifts.slot_date, '%Y-%m-%d') as "SHIFT_DATE",
    strftime(shifts.local_start_at, '%Y-%m-%dT%H:%M') as "START",
    strftime(shifts.local_end_at, '%Y-%m-%dT%H:%M') as "END",
    mapping.segment_type as "SEGMENT_TYPE",
    mapping.work_rule_transfer as "WORK_RULE_TRANSFER",
    mapping.pay_code_edit as "PAY_CODE_EDIT",
    case when shifts.personnel_id is null and mapping.open_shift then 'Y' else 'N' end as "OPEN_SHIFT",
    mapping.business_structure as "BUSINESS_STRUCTURE",
    mapping.cost_center_transfer as "COST_CENTER_TRANSFER",
    mapping.comment as "COMMENT"
from shifts
inner join mapping on mapping.assignment_id = shifts.assignment_id
inner join assignments on assignments.assignment_id = shifts.assignment_id
left join personnel on personnel.personnel_id = shifts.personnel_id
where assignments.is_active
