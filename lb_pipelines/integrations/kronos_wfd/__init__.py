"""Kronos (UKG) Workforce Dimensions: one file per pay period and run, in full and then deltas."""

from lb_pipelines.integrations.declaration import FileExport, Occasion
from lb_pipelines.integrations.kronos_wfd.export import SLUG, build_period_file
from lb_pipelines.integrations.kronos_wfd.settings import KronosWfdMappingRow, KronosWfdSettings


def _build(conn, settings: KronosWfdSettings, occasion: Occasion):
    assert occasion.period is not None  # partitioned by pay period
    return build_period_file(conn, settings, occasion.period, occasion.now)


INTEGRATION = FileExport(
    slug=SLUG,
    title="Kronos Workforce Dimensions",
    description=(
        "The Kronos WFD file of one pay period: in full the first time, then only ADD/UPDATE/DELETE "
        "against the last file delivered for that period (a header-only file when nothing changed)."
    ),
    settings_model=KronosWfdSettings,
    mapping_row_model=KronosWfdMappingRow,
    models=("export_kronos_wfd",),
    partitioned_by="pay_period",
    build=_build,
)
