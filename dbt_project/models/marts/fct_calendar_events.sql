{#-
    The providers' calendar feeds: one row per (person, slot) that the person ever held in a
    published schedule, as the event their calendar shows for it (lb_pipelines/feeds/calendar.py
    renders the rows of one person as an iCalendar feed).

    The rule, over the slot's versions (fct_shift_history) in order of valid_from:
    - Each version is, for this person, a state: `held` (with its start_at and end_at) when the
      version's personnel_id is the person; `other` when it is someone else, a placeholder or nobody.
    - After the slot's last version, one more state when the slot is gone: `deleted` (deleted in
      Lightning Bolt: its last version has a valid_to) or `unpublished` (the current fct_shifts
      row is not in a published schedule).
    - Only versions from the first one the person held while the schedule was published count:
      a version counts as published when it was still current at the schedule's first publish
      (Lightning Bolt's published_at, the same clock as valid_from) or later.
    - sequence = the number of state changes after that first version: a time change while held,
      a hand-over, a return, a delete, an unpublish. A change of notes (or of anything but the
      times) while held is no change of state, so it does not raise the SEQUENCE.
    - status = CONFIRMED when the final state is held and the current fct_shifts row is
      published with this person; CANCELLED otherwise, showing the last times the person held.
    - last_modified = when the final state began (the version's valid_from; the build that saw
      the delete for `deleted`; Lightning Bolt records no time for an unpublish, so the slot's
      last change stands in for it).
    Placeholders have no calendar: only real people get rows.
-#}
with versions as (
    select
        *,
        row_number() over (partition by slot_id order by valid_from) as version_number
    from {{ ref('fct_shift_history') }}
),

current_shifts as (
    select slot_id, personnel_id, is_published from {{ ref('fct_shifts') }}
),

people as (
    select personnel_id from {{ ref('dim_personnel') }}
    where not is_placeholder
),

assignments as (
    select assignment_id, assignment_name from {{ ref('dim_assignments') }}
),

-- A schedule's first publish the pipeline saw (a publish without a time counts from the start).
first_publishes as (
    select
        schedule_id,
        min(coalesce(published_at, '-infinity'::timestamptz)) as first_published_at
    from {{ ref('schedules_snapshot') }}
    where schedule_status = 'published'
    group by schedule_id
),

-- (person, slot): the first version the person held that was current in a published schedule.
pairs as (
    select
        versions.personnel_id,
        versions.slot_id,
        min(versions.version_number) as first_version
    from versions
    inner join people on people.personnel_id = versions.personnel_id
    inner join first_publishes on first_publishes.schedule_id = versions.schedule_id
    where versions.valid_to is null or versions.valid_to > first_publishes.first_published_at
    group by versions.personnel_id, versions.slot_id
),

last_versions as (
    select * from versions
    qualify version_number = max(version_number) over (partition by slot_id)
),

-- The state after the last version, for a slot that is gone.
gone as (
    select
        last_versions.slot_id,
        last_versions.version_number + 1 as version_number,
        case when last_versions.valid_to is not null then 'deleted' else 'unpublished' end as state,
        coalesce(last_versions.valid_to, last_versions.valid_from) as changed_at
    from last_versions
    left join current_shifts on current_shifts.slot_id = last_versions.slot_id
    where last_versions.valid_to is not null or not coalesce(current_shifts.is_published, false)
),

states as (
    select
        pairs.personnel_id,
        pairs.slot_id,
        versions.version_number,
        versions.valid_from as changed_at,
        case when versions.personnel_id = pairs.personnel_id then 'held' else 'other' end as state,
        case when versions.personnel_id = pairs.personnel_id then versions.start_at end as held_start_at,
        case when versions.personnel_id = pairs.personnel_id then versions.end_at end as held_end_at
    from pairs
    inner join versions
        on versions.slot_id = pairs.slot_id
        and versions.version_number >= pairs.first_version

    union all

    select pairs.personnel_id, pairs.slot_id, gone.version_number, gone.changed_at, gone.state, null, null
    from pairs
    inner join gone on gone.slot_id = pairs.slot_id
),

changes as (
    select
        *,
        lag(state) over slot_versions is null as is_first,
        lag(state) over slot_versions is not null and (
            state is distinct from lag(state) over slot_versions
            or held_start_at is distinct from lag(held_start_at) over slot_versions
            or held_end_at is distinct from lag(held_end_at) over slot_versions
        ) as is_change
    from states
    window slot_versions as (partition by personnel_id, slot_id order by version_number)
),

events as (
    select
        personnel_id,
        slot_id,
        cast(count_if(is_change) as integer) as sequence,
        arg_max(state, version_number) as final_state,
        arg_max(changed_at, version_number) filter (where is_first or is_change) as last_modified,
        max(version_number) filter (where state = 'held') as last_held_version
    from changes
    group by personnel_id, slot_id
)

select
    concat_ws('/', events.personnel_id, events.slot_id) as calendar_event_key,
    events.personnel_id,
    events.slot_id,
    'lb-slot-' || events.slot_id || '@lb-pipelines' as uid,
    case
        when events.final_state = 'held'
            and current_shifts.is_published
            and current_shifts.personnel_id = events.personnel_id
            then 'CONFIRMED'
        else 'CANCELLED'
    end as status,
    events.sequence,
    events.final_state,
    held.start_at,
    held.end_at,
    held.time_zone,
    timezone(held.time_zone, held.start_at) as local_start_at,
    timezone(held.time_zone, held.end_at) as local_end_at,
    held.slot_date,
    held.schedule_id,
    held.department_id,
    held.assignment_id,
    assignments.assignment_name,
    held.notes,
    events.last_modified
from events
inner join versions as held
    on held.slot_id = events.slot_id
    and held.version_number = events.last_held_version
left join current_shifts on current_shifts.slot_id = events.slot_id
left join assignments on assignments.assignment_id = held.assignment_id
