{#-
    Continuous duty stretches: a resident's duty intervals merged wherever the next one starts
    at or before the latest end so far (on real instants), so a 24-hour call followed at once by
    a 6-hour shift is one 30-hour stretch, and a shift inside a longer call adds nothing.
    One row per stretch, with the rest before it (the gap since the previous stretch ended;
    null for a resident's first stretch). A stretch belongs to the Monday-Sunday week of its
    first slot's local start date.

    One sorted pass finds where stretches start (an interval starting after every earlier one
    has ended); the latest end before the next stretch starts is where this one ends.
-#}
with intervals as (
    select * from {{ ref('int_duty_hours__intervals') }}
),

ordered as (
    select
        personnel_id,
        week_start,
        start_at,
        -- slot_id makes the order total, so identical double-booked intervals sort the same way
        max(end_at) over (
            partition by personnel_id order by start_at, end_at, slot_id
            rows between unbounded preceding and 1 preceding
        ) as previous_end_at,
        max(end_at) over (partition by personnel_id) as last_end_at
    from intervals
),

stretch_starts as (
    select *
    from ordered
    where previous_end_at is null or start_at > previous_end_at
),

stretches as (
    select
        personnel_id,
        week_start,
        start_at as stretch_start_at,
        coalesce(
            lead(previous_end_at) over (partition by personnel_id order by start_at),
            last_end_at
        ) as stretch_end_at,
        previous_end_at as previous_stretch_end_at
    from stretch_starts
)

select
    personnel_id,
    week_start,
    stretch_start_at,
    stretch_end_at,
    round(epoch(stretch_end_at - stretch_start_at) / 3600.0, 4) as stretch_hours,
    round(epoch(stretch_start_at - previous_stretch_end_at) / 3600.0, 4) as rest_before_hours
from stretches
