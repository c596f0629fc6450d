"""One factory per kind of integration: a declaration in, its Dagster assets out.

Every asset an integration owns carries its group (the slug) and
the tags `lb/integration` and `lb/kind`.
"""

import dagster as dg
from dagster_duckdb import DuckDBResource

from lb_pipelines import clock
from lb_pipelines.automation.pay_period_partitions import PAY_PERIODS
from lb_pipelines.automation.pay_periods import pay_period_from_key
from lb_pipelines.integrations.declaration import ApiPush, FileExport, InboundImport, Integration, Occasion
from lb_pipelines.integrations.exporting import deliver_export, enabled_config, not_enabled, problems_check_spec
from lb_pipelines.integrations.import_assets import import_files
from lb_pipelines.integrations.push_assets import push
from lb_pipelines.lightning_bolt.source.resource import LightningBoltResource
from lb_pipelines.lightning_bolt.source.contract import Window
from lb_pipelines.warehouse.raw_assets import raw_asset_key
from lb_pipelines.warehouse.raw_load import window_is_loaded


def partitions_of(integration: Integration) -> dg.PartitionsDefinition | None:
    return PAY_PERIODS if integration.partitioned_by == "pay_period" else None


def _occasion(context: dg.AssetExecutionContext, integration: Integration, settings, conn) -> Occasion:
    if integration.partitioned_by != "pay_period":
        return Occasion(clock.now())
    pay_period = settings.pay_period
    try:
        period = pay_period_from_key(context.partition_key, pay_period.anchor, pay_period.length_days)
    except ValueError as exc:
        raise dg.Failure(f"{integration.slug}: {exc}; its settings' pay_period must match the partition") from None
    unread = [e for e in ("slots", "schedules") if not window_is_loaded(conn, e, Window(period.start, period.end))]
    if unread:
        # Without the period's slots every delivered shift would look deleted, or the file empty.
        raise dg.Failure(
            f"pay period {period.start}..{period.end}: {' and '.join(unread)} for these dates were never "
            "loaded; load them first (raw assets with start_date/end_date covering the period). "
            "Refusing to send a file built without them."
        )
    return Occasion(clock.now(), period)


def _output_asset(integration: Integration, kinds: set[str]):
    """The decorator of an integration's output asset: its key, group, upstream, check and tags."""
    return dg.asset(
        key=integration.output_key,
        group_name=integration.slug,
        partitions_def=partitions_of(integration),
        deps=[integration.config_key, *integration.model_keys, *(raw_asset_key(e) for e in integration.raw_entities)],
        check_specs=[problems_check_spec(integration.output_key)],
        kinds=kinds,
        tags=integration.tags,
        pool="warehouse",
        description=integration.description,
    )


def file_export_asset(integration: FileExport) -> dg.AssetsDefinition:
    """The asset that renders the integration's file(s) from the warehouse and delivers them."""

    @_output_asset(integration, set(integration.file_kinds))
    def _file(context: dg.AssetExecutionContext, warehouse: DuckDBResource) -> dg.MaterializeResult:
        config = enabled_config(integration)
        if config is None:
            return not_enabled(integration.slug)
        with warehouse.get_connection() as conn:
            occasion = _occasion(context, integration, config.settings, conn)
            export = integration.build(conn, config.settings, occasion)
        return deliver_export(context, warehouse, config.settings.delivery, export)

    return _file


def api_push_asset(integration: ApiPush) -> dg.AssetsDefinition:
    """The asset that pushes the integration's desired state to its vendor API (or previews it)."""

    @_output_asset(integration, {"api"})
    def _pushed(context: dg.AssetExecutionContext, warehouse: DuckDBResource) -> dg.MaterializeResult:
        config = enabled_config(integration)
        if config is None:
            return not_enabled(integration.slug)
        return push(context, warehouse, integration, config.settings, Occasion(clock.now()))

    return _pushed


class InboundFileConfig(dg.Config):
    """Which waiting file to import (the sensor names it); empty: every whole file in the drop."""

    file: str = ""


def inbound_import_asset(integration: InboundImport) -> dg.AssetsDefinition:
    """The asset that imports the files waiting in the integration's drop (or the one named)."""

    @_output_asset(integration, {"csv", "api"})
    def _imported(
        context: dg.AssetExecutionContext, config: InboundFileConfig, warehouse: DuckDBResource,
        lightning_bolt: LightningBoltResource,
    ) -> dg.MaterializeResult:
        settings_config = enabled_config(integration)
        if settings_config is None:
            return not_enabled(integration.slug)
        return import_files(context, warehouse, integration, settings_config.settings, lightning_bolt.open, config.file)

    return _imported


def integration_assets(integration: Integration) -> list[dg.AssetsDefinition]:
    """The integration's own assets (its config asset is built with every other's)."""
    if isinstance(integration, FileExport):
        return [file_export_asset(integration)]
    if isinstance(integration, ApiPush):
        return [api_push_asset(integration)]
    if isinstance(integration, InboundImport):
        return [inbound_import_asset(integration)]
    raise NotImplementedError(f"{integration.slug}: no asset factory for kind {integration.kind!r} yet")
