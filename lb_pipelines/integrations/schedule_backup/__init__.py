"""Schedule backup: every published slot of the next days, as CSV and as a workbook, for downtime."""

from lb_pipelines.integrations.declaration import FileExport, Occasion
from lb_pipelines.integrations.schedule_backup.export import SLUG, build_file
from lb_pipelines.integrations.schedule_backup.settings import ScheduleBackupSettings


def _build(conn, settings: ScheduleBackupSettings, occasion: Occasion):
    return build_file(conn, settings, occasion.now)


INTEGRATION = FileExport(
    slug=SLUG,
    title="Schedule backup",
    description=(
        "The downtime backup: every published slot, filled or not, from today to the window's end, "
        "as schedule_backup_YYYYMMDDHHMM.csv and .xlsx (one sheet per department), one delivery."
    ),
    settings_model=ScheduleBackupSettings,
    mapping_row_model=None,  # no mapping: in downtime everything is needed
    models=("export_schedule_backup",),
    raw_entities=("departments",),  # the settings' department ids are checked against them
    file_kinds=frozenset({"csv", "xlsx"}),
    build=_build,
)
