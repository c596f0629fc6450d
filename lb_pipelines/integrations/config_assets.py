"""One asset per integration: its settings and mapping, validated and loaded into `config`.

A settings file with a mistake fails this asset's `settings_accepted` check (severity ERROR)
and that integration's exports, with the file, the key and the reason; a bad mapping row is
skipped, counted and recorded, and the good rows still load. The raw load, dbt, the BI copy and
other integrations are not held up by one integration's mistake.
"""

import dagster as dg
from dagster_duckdb import DuckDBResource

from lb_pipelines.delivery.ledger import Problem, record_problems
from lb_pipelines.integrations.config_files import ConfigError
from lb_pipelines.integrations.config_tables import ensure_config_tables, write_config_to_warehouse
from lb_pipelines.integrations.declaration import Integration
from lb_pipelines.integrations.registry import integrations
from lb_pipelines.integrations.exporting import PROBLEMS_CHECK, preview, problems_check_spec
from lb_pipelines.warehouse.raw_assets import raw_asset_key


SETTINGS_CHECK = "settings_accepted"


def build_config_asset(declared: Integration) -> dg.AssetsDefinition:
    integration, key, row_model = declared.slug, declared.config_key, declared.mapping_row_model

    @dg.asset(
        key=key,
        group_name=integration,
        tags=declared.tags,
        deps=[raw_asset_key("assignments")],  # a mapping row must name a known assignment
        check_specs=[
            problems_check_spec(key),
            dg.AssetCheckSpec(
                SETTINGS_CHECK, asset=key, description="settings.yaml and mapping.csv were accepted at load."
            ),
        ],
        kinds={"yaml", "csv", "duckdb"},
        pool="warehouse",
        description=f"Settings and mapping of {integration} from $LB_CONFIG_DIR/{integration}/, validated.",
    )
    def _config(context: dg.AssetExecutionContext, warehouse: DuckDBResource) -> dg.MaterializeResult:
        # A refused file is this integration's concern only: the asset still materializes (so the
        # warehouse, the BI copy and every other integration go on), its settings check fails,
        # and its export refuses to send. The last accepted configuration stays in `config`.
        refusal: ConfigError | None = None
        try:
            config = declared.load()
        except ConfigError as exc:
            config, refusal = None, exc
        with warehouse.get_connection() as conn:
            if refusal is None:
                mapping_problems = write_config_to_warehouse(conn, integration, row_model, config)
            else:
                ensure_config_tables(conn, integration, row_model)
                mapping_problems = []
            problems = [
                Problem("bad_mapping_row", f"{p.file.name} line {p.line}", p.field, p.reason) for p in mapping_problems
            ]
            if refusal is not None:
                problems += [Problem("settings_refused", refusal.file.name, k, r) for k, r in refusal.errors]
            record_problems(conn, integration, "config", context.run.run_id, problems)
        for problem in mapping_problems:
            context.log.warning(f"{integration}: {problem}")
        if refusal is not None:
            context.log.error(f"{integration} configuration refused; its exports send nothing until it is fixed:\n{refusal}")
        mapping = config.mapping if config else None
        metadata = {
            "enabled": bool(config and config.enabled),
            "settings_file": str(config.settings_file) if config else (
                "refused" if refusal else "absent: the integration is off"
            ),
            # rows kept at load, less those naming an assignment Lightning Bolt lacks (found on writing)
            "mapping_rows": len(mapping.rows) - (len(mapping_problems) - len(mapping.problems))
            if mapping
            else 0,
            "problems": len(problems),
        }
        if refusal is not None:
            metadata["refused"] = dg.MetadataValue.md(f"```\n{refusal}\n```")
        if problems:
            metadata["problem_rows"] = preview(
                ["record", "field", "reason"], [(p.record, p.field, p.reason) for p in problems]
            )
        checks = [
            # Rows skipped; a refused file is the other check's (and the failed export's) alert.
            dg.AssetCheckResult(
                check_name=PROBLEMS_CHECK,
                passed=not mapping_problems,
                severity=dg.AssetCheckSeverity.WARN,
                metadata={"problems": len(mapping_problems)},
            ),
            dg.AssetCheckResult(
                check_name=SETTINGS_CHECK,
                passed=refusal is None,
                severity=dg.AssetCheckSeverity.ERROR,
                description=str(refusal) if refusal else None,
            ),
        ]
        return dg.MaterializeResult(metadata=metadata, check_results=checks)

    return _config


def config_assets() -> list[dg.AssetsDefinition]:
    return [build_config_asset(declared) for declared in integrations().values()]
