"""TigerConnect: who is scheduled on each mapped job token, uploaded as one CSV per time zone."""

from lb_pipelines.integrations.declaration import ApiPush, Occasion, Triggers
from lb_pipelines.integrations.tigerconnect.api import TigerConnectAdapter
from lb_pipelines.integrations.tigerconnect.desired import SLUG, desired_uploads
from lb_pipelines.integrations.tigerconnect.settings import TigerConnectMappingRow, TigerConnectSettings


def _desired(conn, settings: TigerConnectSettings, occasion: Occasion):
    return desired_uploads(conn, settings, occasion.now)


INTEGRATION = ApiPush(
    slug=SLUG,
    title="TigerConnect",
    description="Who is scheduled on each mapped job token for the window, uploaded to TigerConnect's "
    "scheduler CSV webhook (one overwrite per time zone): only zones that changed, reconciled every "
    "10 minutes.",
    settings_model=TigerConnectSettings,
    mapping_row_model=TigerConnectMappingRow,
    models=("export_tigerconnect",),
    triggers=Triggers(cadence=True, change_log=True),
    desired=_desired,
    adapter=lambda settings, state: TigerConnectAdapter(settings.delivery, state),
    personal_preview_columns=frozenset({"USER_ID"}),
)
