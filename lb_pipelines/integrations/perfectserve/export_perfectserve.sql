{#- PerfectServe: the on-call engine's rows for its mapping (see macros/on_call_rows.sql). -#}
{{ on_call_rows(source('perfectserve', 'mapping')) }}
