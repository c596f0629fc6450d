{#- What every export of people's shifts says about a slot's person, from
    int_exports__published_shifts: what becomes of the row (outcome), why it is a problem, and
    the person's candidate vendor ids (the asset picks the one the settings name).
    outcome: deliver (a filled slot) | the unfilled outcome (default coverage_gap: not a row,
    counted) | the placeholder outcome (default placeholder: not a row, counted; Epic On-Call
    Finder delivers placeholders) | problem (unknown or inactive person, with problem_reason). -#}
{% macro shift_person_columns(shifts='shifts', unfilled_outcome="'coverage_gap'", placeholder_outcome="'placeholder'") -%}
    case {{ shifts }}.person_status
        when 'filled' then 'deliver'
        when 'unfilled' then {{ unfilled_outcome }}
        when 'placeholder' then {{ placeholder_outcome }}
        else 'problem'
    end as outcome,
    {{ shifts }}.person_problem as problem_reason,
    {{ shifts }}.personnel_id,
    {{ shifts }}.unique_id,
    {{ shifts }}.custom1,
    {{ shifts }}.custom2,
    {{ shifts }}.custom3,
    {{ shifts }}.custom4,
    {{ shifts }}.emp_id
{%- endmacro %}
