"""Outlook: each person's published shifts as events in their own calendar, through Microsoft Graph."""

from lb_pipelines.integrations.declaration import ApiPush, Occasion, Triggers
from lb_pipelines.integrations.outlook.desired import SLUG, desired_events
from lb_pipelines.integrations.outlook.graph import GraphAdapter
from lb_pipelines.integrations.outlook.settings import OutlookMappingRow, OutlookSettings


def _desired(conn, settings: OutlookSettings, occasion: Occasion):
    return desired_events(conn, settings, occasion.now)


INTEGRATION = ApiPush(
    slug=SLUG,
    title="Outlook",
    description="Each person's published mapped shifts as Outlook events (Microsoft Graph): differences only, "
    "reconciled hourly.",
    settings_model=OutlookSettings,
    mapping_row_model=OutlookMappingRow,
    models=("export_outlook",),
    triggers=Triggers(cadence=True, change_log=True),
    desired=_desired,
    adapter=lambda settings, state: GraphAdapter(settings.delivery),
    personal_preview_columns=frozenset({"mailbox"}),
)
