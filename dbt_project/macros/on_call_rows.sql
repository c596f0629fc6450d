{#-
    The on-call engine's rows for one secure-messaging vendor (its mapping relation): one row per
    published slot of a mapped assignment x mapping row (one assignment may feed several teams or
    roles), with the team, role and call order the mapping gives, the real instants (handover is
    at the exact instant, across midnight and daylight saving) and what the person is:
    outcome deliver (a filled slot, or a placeholder, which goes out with its contact details) |
    coverage_gap (unfilled: nobody to call, reported as a gap) | problem (unknown or inactive
    person). Who is on call at a given moment is decided at that moment, from these rows, by
    the one rule in lb_pipelines/integrations/on_call.py (every adapter and the feed share it).
-#}
{% macro on_call_rows(mapping_relation) %}
with shifts as (
    select * from {{ ref('int_exports__published_shifts') }}
),

mapping as (
    select * from {{ mapping_relation }}
)

select
    shifts.slot_id,
    mapping.mapping_line,
    mapping.team_id,
    mapping.role,
    mapping.priority as call_order,
    shifts.assignment_id,
    shifts.department_id,
    shifts.time_zone,
    shifts.slot_date,
    shifts.start_at,
    shifts.end_at,
    shifts.local_start_at,
    shifts.local_end_at,
    shifts.person_status,
    {{ shift_person_columns('shifts', placeholder_outcome="'deliver'") }},
    shifts.display_name,
    shifts.pager,
    shifts.cell_phone
from shifts
inner join mapping on mapping.assignment_id = shifts.assignment_id
{% endmacro %}
