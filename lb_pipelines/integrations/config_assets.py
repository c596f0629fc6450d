"""One asset per integration: its settings and mapping, validated and loaded into `config`.

A settings file with a mistake fails this asset (and so that integration's exports) with the
file, the key and the reason; a bad mapping row is skipped, counted and recorded, and the good
rows still load. Other integrations are not held up by one integration's mistake.
"""

import dagster as dg
from dagster_duckdb import DuckDBResource

from lb_pipelines.delivery.ledger import Problem, record_problems
from lb_pipelines.integrations.config import ConfigError, integrations, load_integration, write_config_to_warehouse
from lb_pipelines.integrations.exporting import PROBLEMS_CHECK, preview, problems_check_spec
from lb_pipelines.warehouse.raw_assets import raw_asset_key


def config_asset_key(integration: str) -> dg.AssetKey:
    return dg.AssetKey(["config", integration])


def build_config_asset(integration: str) -> dg.AssetsDefinition:
    key = config_asset_key(integration)

    @dg.asset(
        key=key,
        group_name=integration,
        deps=[raw_asset_key("assignments")],  # a mapping row must name a known assignment
        check_specs=[problems_check_spec(key)],
        kinds={"yaml", "csv", "duckdb"},
        pool="warehouse",
        description=f"Settings and mapping of {integration} from $LB_CONFIG_DIR/{integration}/, validated.",
    )
    def _config(context: dg.AssetExecutionContext, warehouse: DuckDBResource) -> dg.MaterializeResult:
        try:
            config = load_integration(integration)
        except ConfigError as exc:
            raise dg.Failure(description=f"{integration} configuration refused:\n{exc}") from exc
        with warehouse.get_connection() as conn:
            mapping_problems = write_config_to_warehouse(conn, integration, config)
            problems = [
                Problem("bad_mapping_row", f"{p.file.name} line {p.line}", p.field, p.reason) for p in mapping_problems
            ]
            record_problems(conn, integration, "config", context.run.run_id, problems)
        for problem in mapping_problems:
            context.log.warning(f"{integration}: {problem}")
        mapping = config.mapping if config else None
        metadata = {
            "enabled": bool(config and config.enabled),
            "settings_file": str(config.settings_file) if config else "absent: the integration is off",
            "mapping_rows": len(mapping.rows) - sum(p.field == "assignment_id" for p in mapping_problems)
            if mapping
            else 0,
            "problems": len(problems),
        }
        if problems:
            metadata["problem_rows"] = preview(
                ["record", "field", "reason"], [(p.record, p.field, p.reason) for p in problems]
            )
        check = dg.AssetCheckResult(
            check_name=PROBLEMS_CHECK,
            passed=not problems,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"problems": len(problems)},
        )
        return dg.MaterializeResult(metadata=metadata, check_results=[check])

    return _config


def config_assets() -> list[dg.AssetsDefinition]:
    return [build_config_asset(slug) for slug in integrations()]
