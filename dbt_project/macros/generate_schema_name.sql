{#- Schemas are named exactly as configured (staging, marts, ...), not prefixed with the
    target schema: BI users look for `marts.fct_shifts`, not `main_marts.fct_shifts`. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {{ custom_schema_name if custom_schema_name else target.schema }}
{%- endmacro %}
