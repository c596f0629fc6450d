"""Demographic import: contact details and ids from the hospital's source of truth (HR or the
identity system) into Lightning Bolt, for the people the file's key matches exactly once."""

from lb_pipelines.integrations.declaration import InboundImport, Triggers
from lb_pipelines.integrations.demographic_import.importer import REPORT_COLUMNS, import_file
from lb_pipelines.integrations.demographic_import.settings import DemographicImportSettings

INTEGRATION = InboundImport(
    slug="demographic_import",
    title="Demographic import",
    description=(
        "A CSV dropped daily by HR: each row's changed e-mail, cell phone, pager or ids sent to Lightning Bolt "
        "(PATCH) when its key matches exactly one person; a report per file, the file moved to processed/."
    ),
    settings_model=DemographicImportSettings,
    triggers=Triggers(cadence=True, inbound_file=True),
    import_file=import_file,
    report_columns=REPORT_COLUMNS,
)
