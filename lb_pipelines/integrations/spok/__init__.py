"""Spok: each mapped group's on-call entries (now, then next) as Spok on-call assignments, one each,
added, updated and deleted as the schedule changes."""

from lb_pipelines.integrations.on_call import on_call_push
from lb_pipelines.integrations.spok.api import VENDOR, adapter
from lb_pipelines.integrations.spok.desired import SLUG, desired

INTEGRATION = on_call_push(
    slug=SLUG,
    title=VENDOR,
    description="Who is on call now and next for each mapped Spok group and role: one Spok on-call "
    "assignment per entry, added, updated or deleted when it changed (on every schedule change, "
    "reconciled every 10 minutes); entries that ended stay in Spok as history.",
    desired=desired,
    adapter=adapter,
    personal_preview_columns=frozenset({"messaging_id"}),
)
