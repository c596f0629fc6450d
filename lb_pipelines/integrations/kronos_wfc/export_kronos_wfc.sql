{#-
    Kronos Workforce Central: one row per published slot of a mapped assignment, in the
    vendor's layout, for every loaded date. The asset picks the pay period, applies the
    inclusion matrix (personnel_type x assignment_type, a setting) and the configured
    PERSON_NUMBER field.
    outcome: deliver | coverage_gap (unfilled: not a row, counted) | placeholder (not a person:
    not a row, counted) | problem (with a reason).
    COST_CENTER: the person's home facility when the shift is in it, else the facility the
    person is lent to (away_coid), else the department's own. The rule lives here and only here.
-#}
with shifts as (
    select * from {{ ref('int_exports__published_shifts') }}
),

personnel as (
    select
        personnel_id,
        nullif(trim(home_coid), '') as home_coid,
        nullif(trim(away_coid), '') as away_coid
    from {{ ref('dim_personnel') }}
),

departments as (
    select
        department_id,
        nullif(trim(coid), '') as coid,
        nullif(trim(kronos_department_id), '') as kronos_department_id
    from {{ ref('dim_departments') }}
),

mapping as (
    select * from {{ source('kronos_wfc', 'mapping') }}
)

select
    shifts.slot_id,
    shifts.slot_date,
    shifts.start_at,
    shifts.department_id as lb_department_id,  -- DuckDB names ignore case: DEPARTMENT_ID is the vendor's
    {{ shift_person_columns('shifts') }},
    shifts.personnel_type,
    shifts.assignment_type,
    -- the vendor's columns (PERSON_NUMBER comes from the asset)
    strftime(shifts.slot_date, '%Y-%m-%d') as "DATE",
    strftime(shifts.local_start_at, '%Y-%m-%d %H:%M') as "START",
    strftime(shifts.local_end_at, '%Y-%m-%d %H:%M') as "END",
    cast(round(shifts.elapsed_hours, 2) as decimal(6, 2)) as "HOURS",
    mapping.pay_code as "PAY_CODE",
    departments.kronos_department_id as "DEPARTMENT_ID",
    case
        when departments.coid = personnel.home_coid then personnel.home_coid
        else coalesce(personnel.away_coid, departments.coid)
    end as "COST_CENTER"
from shifts
inner join mapping on mapping.assignment_id = shifts.assignment_id
left join personnel on personnel.personnel_id = shifts.personnel_id
left join departments on departments.department_id = shifts.department_id
