{#- Every loaded slot with its real start and end instants; the rules are in macros/slot_instants.sql. -#}
{{ slot_instants(ref('stg_lightning_bolt__slots')) }}
