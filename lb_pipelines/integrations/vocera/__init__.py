"""Vocera: each mapped team's on-call list, published for the feed service its adapters poll."""

from lb_pipelines.integrations.on_call import on_call_push
from lb_pipelines.integrations.vocera.api import SLUG, VoceraSettings, adapter, desired

INTEGRATION = on_call_push(
    slug=SLUG,
    title="Vocera",
    description="Who is on call now and next for each mapped Vocera team, in call order, published as one "
    "document per team that Vocera's adapters poll from the feed service (GET /vocera/teams/<team>.json).",
    desired=desired,
    adapter=adapter,
    settings_model=VoceraSettings,
    personal_preview_columns=frozenset({"user"}),
    publishes_documents=True,
)
