"""New Innovations duty hours: residents' published shifts, in full the first time, then deltas."""

from lb_pipelines.integrations.declaration import FileExport, Occasion
from lb_pipelines.integrations.new_innovations.export import SLUG, build_file
from lb_pipelines.integrations.new_innovations.settings import (
    NewInnovationsMappingRow,
    NewInnovationsSettings,
)


def _build(conn, settings: NewInnovationsSettings, occasion: Occasion):
    return build_file(conn, settings, occasion.now)


INTEGRATION = FileExport(
    slug=SLUG,
    title="New Innovations duty hours",
    description=(
        "The New Innovations duty-hours file: published shifts of mapped assignments from days_back on, "
        "in full the first time, then only ADD/UPDATE/DELETE against the last file delivered "
        "(a header-only file when nothing changed)."
    ),
    settings_model=NewInnovationsSettings,
    mapping_row_model=NewInnovationsMappingRow,
    models=("export_new_innovations",),
    build=_build,
)
