"""Epic OpTime: the providers scheduled on mapped assignments, for the OR snapboard, as a full file."""

from lb_pipelines.integrations.declaration import FileExport, Occasion, Triggers
from lb_pipelines.integrations.epic_optime.export import SLUG, build_file
from lb_pipelines.integrations.epic_optime.settings import EpicOpTimeMappingRow, EpicOpTimeSettings


def _build(conn, settings: EpicOpTimeSettings, occasion: Occasion):
    return build_file(conn, settings, occasion.now)


INTEGRATION = FileExport(
    slug=SLUG,
    title="Epic OpTime",
    description=(
        "The full Epic OpTime file for the window (filled slots of mapped assignments, by import "
        "group), delivered and recorded in the ledger."
    ),
    settings_model=EpicOpTimeSettings,
    mapping_row_model=EpicOpTimeMappingRow,
    models=("export_epic_optime",),
    triggers=Triggers(cadence=True),
    build=_build,
)
