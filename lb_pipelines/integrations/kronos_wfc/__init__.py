"""Kronos Workforce Central: the included shifts of one pay period, in full, once a day."""

from lb_pipelines.integrations.declaration import FileExport, Occasion
from lb_pipelines.integrations.kronos_wfc.export import SLUG, build_period_file
from lb_pipelines.integrations.kronos_wfc.settings import KronosWfcMappingRow, KronosWfcSettings


def _build(conn, settings: KronosWfcSettings, occasion: Occasion):
    assert occasion.period is not None  # partitioned by pay period
    return build_period_file(conn, settings, occasion.period, occasion.now)


INTEGRATION = FileExport(
    slug=SLUG,
    title="Kronos Workforce Central",
    description=(
        "The Kronos WFC file of one pay period, in full every time: the filled shifts of mapped "
        "assignments whose (personnel type, assignment type) the settings include, with hours, "
        "pay code, Kronos department and cost center. A second run on the same day replaces that day's file."
    ),
    settings_model=KronosWfcSettings,
    mapping_row_model=KronosWfcMappingRow,
    models=("export_kronos_wfc",),
    partitioned_by="pay_period",
    build=_build,
)
