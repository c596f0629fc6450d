{#- Fails for every row whose column lies outside [min_value, max_value] (nulls pass). -#}
{% test lb_value_between(model, column_name, min_value, max_value, exclusive_min=false) %}
select *
from {{ model }}
where {{ column_name }} is not null
  and (
    {{ column_name }} {{ '<=' if exclusive_min else '<' }} {{ min_value }}
    or {{ column_name }} > {{ max_value }}
  )
{% endtest %}
