"""Enterprise data warehouse: every entity as CSV with a Frictionless datapackage.json, zipped."""

from lb_pipelines import clock
from lb_pipelines.integrations.declaration import FileExport, Occasion
from lb_pipelines.integrations.edw.export import SLUG, build_file
from lb_pipelines.integrations.edw.settings import EdwSettings
from lb_pipelines.lightning_bolt.source.contract import ENTITIES


def _build(conn, settings: EdwSettings, occasion: Occasion):
    return build_file(conn, clock.today())


INTEGRATION = FileExport(
    slug=SLUG,
    title="Enterprise data warehouse",
    description="lb_edw_YYYYMMDD.zip: every Lightning Bolt entity as CSV, described by a Frictionless Data Package.",
    settings_model=EdwSettings,
    raw_entities=tuple(ENTITIES),
    file_kinds=frozenset({"csv", "zip"}),
    build=_build,
)
