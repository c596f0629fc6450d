"""Epic On-Call Finder: who is on call, for each Epic team, as a full file for the window."""

from lb_pipelines.integrations.declaration import FileExport, Occasion, Triggers
from lb_pipelines.integrations.epic_on_call_finder.export import SLUG, build_file
from lb_pipelines.integrations.epic_on_call_finder.settings import (
    EpicOnCallFinderMappingRow,
    EpicOnCallFinderSettings,
)


def _build(conn, settings: EpicOnCallFinderSettings, occasion: Occasion):
    return build_file(conn, settings, occasion.now)


INTEGRATION = FileExport(
    slug=SLUG,
    title="Epic On-Call Finder",
    description="The full Epic On-Call Finder file for the window, delivered and recorded in the ledger.",
    settings_model=EpicOnCallFinderSettings,
    mapping_row_model=EpicOnCallFinderMappingRow,
    models=("export_epic_on_call_finder",),
    triggers=Triggers(cadence=True, change_log=True),
    build=_build,
)
