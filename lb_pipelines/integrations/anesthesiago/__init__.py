"""AnesthesiaGo: the providers scheduled on mapped assignments, sent as one schedule per date."""

from lb_pipelines.integrations.anesthesiago.api import AnesthesiaGoAdapter
from lb_pipelines.integrations.anesthesiago.desired import SLUG, desired_schedules
from lb_pipelines.integrations.anesthesiago.settings import AnesthesiaGoMappingRow, AnesthesiaGoSettings
from lb_pipelines.integrations.declaration import ApiPush, Occasion, Triggers


def _desired(conn, settings: AnesthesiaGoSettings, occasion: Occasion):
    return desired_schedules(conn, settings, occasion.now)


INTEGRATION = ApiPush(
    slug=SLUG,
    title="AnesthesiaGo",
    description="The providers scheduled on mapped assignments, by employee id, sent to AnesthesiaGo "
    "as one schedule per date of the window (PUT replaces the date): only dates that changed, "
    "reconciled daily.",
    settings_model=AnesthesiaGoSettings,
    mapping_row_model=AnesthesiaGoMappingRow,
    models=("export_anesthesiago",),
    triggers=Triggers(cadence=True, change_log=True),
    desired=_desired,
    adapter=lambda settings, state: AnesthesiaGoAdapter(settings.delivery, state),
    personal_preview_columns=frozenset({"emp_id"}),
)
