"""The dbt project as Dagster assets: models are assets, dbt tests are asset checks."""


import contextlib
import functools
import json
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Any, Iterator, Mapping

import dagster as dg
import duckdb
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, dbt_assets
from dagster_duckdb import DuckDBResource

from lb_pipelines.automation import CHANGE_LOG_TRIGGER, TRIGGER_TAG
from lb_pipelines.delivery.ledger import ensure_delivery_tables
from lb_pipelines.delivery.targets import write_atomically
from lb_pipelines.warehouse import compiled_models
from lb_pipelines.warehouse.dbt_project import dbt_executable, lightning_bolt_dbt


INTEGRATIONS_PATH = "../lb_pipelines/integrations/"
UNIQUE_ID = "dagster_dbt/unique_id"


class WarehouseTranslator(DagsterDbtTranslator):
    """Groups models so the UI reads source → staging → marts, and each export model with its
    integration (its folder, lb_pipelines/integrations/<slug>/, is a dbt model path)."""

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        if dbt_resource_props.get("resource_type") == "source":
            return None
        fqn = dbt_resource_props.get("fqn", [])
        if dbt_resource_props.get("original_file_path", "").startswith(INTEGRATIONS_PATH):
            return fqn[1]  # the integration's slug
        return f"warehouse_{fqn[1]}" if len(fqn) > 2 else "warehouse"


@contextlib.contextmanager
def _warehouse_env(database: str) -> Iterator[None]:
    """dbt finds the warehouse through LB_WAREHOUSE (profiles.yml); point it at this run's file."""
    previous = os.environ.get("LB_WAREHOUSE")
    os.environ["LB_WAREHOUSE"] = str(database)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("LB_WAREHOUSE", None)
        else:
            os.environ["LB_WAREHOUSE"] = previous


PARSE_CACHE_SUFFIX = ".dbt_partial_parse.msgpack"


def _parse_cache(database: str) -> Path:
    """dbt's parse of the project for this warehouse, kept beside it.

    dbt re-parses the whole project (seconds) when the profile differs from its last parse's,
    and the profile names the warehouse's path: one cache per warehouse lets every build after
    the first parse only the files that changed (dbt checks every file's hash itself)."""
    return Path(str(database) + PARSE_CACHE_SUFFIX)


def _keep_parse(invocation_target: Path, cache: Path) -> None:
    parsed = invocation_target / "partial_parse.msgpack"
    if parsed.exists():
        write_atomically(cache, parsed.read_bytes())  # a killed copy never leaves half a file where dbt reads


@functools.lru_cache(maxsize=2)
def _project(manifest_path: str, modified_ns: int) -> tuple[str, dict[str, Any]]:
    """The prepared manifest's stamp and nodes, read once per version of the file."""
    return compiled_models.project_stamp(Path(manifest_path)), json.loads(Path(manifest_path).read_text())["nodes"]


def project() -> tuple[str, dict[str, Any]]:
    path = Path(lightning_bolt_dbt.manifest_path)
    return _project(str(path), path.stat().st_mtime_ns)


@dbt_assets(
    manifest=lightning_bolt_dbt.manifest_path,
    dagster_dbt_translator=WarehouseTranslator(),
    pool="warehouse",
)
def warehouse_dbt_assets(context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: DuckDBResource):
    stamp, nodes = project()
    by_date = _by_date_models(context, nodes)
    with warehouse.get_connection() as conn:
        ensure_delivery_tables(conn)  # the ledger views read them, even before the first delivery
        loaded = compiled_models.last_load_id(conn)
    change_run = context.run.tags.get(TRIGGER_TAG) == CHANGE_LOG_TRIGGER
    if change_run:
        models, tests = _change_run_tests(context, nodes)
        replayed = yield from _replay_compiled(context, warehouse, stamp, models, tests)
        if replayed:
            return
    with warehouse.get_connection() as conn:
        compiled_models.note_builds(conn, by_date, None)  # until dbt has built them all
    with _warehouse_env(warehouse.database):
        target = lightning_bolt_dbt.project_dir / lightning_bolt_dbt.target_path / f"{context.op.name}-{context.run.run_id[:7]}-{uuid.uuid4().hex[:7]}"
        cache = _parse_cache(warehouse.database)
        if cache.exists():
            target.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(cache, target / "partial_parse.msgpack")  # dagster-dbt then keeps it
        # cautious: a job that builds only some models (an integration's) runs only the tests whose
        # every parent it builds, so a relationship test to a mart it left out cannot fail it.
        invocation = dbt.cli(["build", "--indirect-selection", "cautious"], context=context, target_path=target)
        yield from invocation.stream()
        _keep_parse(target, cache)
        compiled_models.record_compiled(target / "manifest.json", warehouse.database, stamp)
    with warehouse.get_connection() as conn:  # dbt succeeded: they hold every load up to `loaded`
        compiled_models.note_builds(conn, by_date, stamp, loaded)
    if change_run and not context.selected_asset_check_keys:
        _test_after_dbt(context, warehouse, stamp, models, tests)


def _by_date_models(context: dg.AssetExecutionContext, nodes: Mapping[str, Any]) -> list[str]:
    """The selected models a change run may rebuild by date (compiled_models.py)."""
    specs = context.assets_def.specs_by_key
    uids = (specs[k].metadata[UNIQUE_ID] for k in context.selected_asset_keys)
    return [uid for uid in uids if (nodes[uid].get("config", {}).get("meta") or {}).get("lb_rebuild_by_date")]


def _change_run_tests(
    context: dg.AssetExecutionContext, nodes: Mapping[str, Any]
) -> tuple[dict[str, dg.AssetKey], dict[str, list[str]]]:
    """The selected models by dbt id, and every test of them (id: the nodes it reads).

    A change run selects no dbt test as an asset check (the change-log sensor leaves them out:
    a hundred check events would cost seconds of the change's way out); it runs them all here
    and fails naming any that fails. Every other run shows each as a check."""
    assets = context.assets_def
    models = {assets.specs_by_key[k].metadata[UNIQUE_ID]: k for k in context.selected_asset_keys}
    tests = {uid: n["depends_on"]["nodes"] for uid, n in nodes.items()
             if n["resource_type"] == "test" and any(p in models for p in n["depends_on"]["nodes"])}
    return models, tests


def _replay_compiled(context: dg.AssetExecutionContext, warehouse: DuckDBResource, stamp: str,
                     models: dict[str, dg.AssetKey], tests: dict[str, list[str]]):
    """A change run's models from the SQL dbt compiled for this warehouse (compiled_models.py);
    returns False, having yielded nothing, when dbt itself must run."""
    checks = _selected_checks(context)
    plan, why_not = compiled_models.replay_for(warehouse.database, stamp, models, tests)
    if plan is None:
        context.log.info(f"change run: dbt itself builds the models ({why_not})")
        return False
    started = time.perf_counter()
    with warehouse.get_connection() as conn:
        try:
            outcomes = compiled_models.replay(conn, plan)
        except compiled_models.ReplayTestFailed as failed:
            yield from _check_results(checks, failed.outcomes)
            raise dg.Failure(str(failed)) from None
        except duckdb.Error as exc:  # e.g. a relation dropped by hand since: rolled back, dbt rebuilds
            context.log.warning(f"change run: the replay stopped ({type(exc).__name__}); dbt itself builds the models")
            return False
    tables = sum(node["materialized"] == "table" for _, node in plan.models)
    warned = [o.unique_id for o in outcomes if o.should_warn]
    context.log.info(f"change run: {tables} tables rebuilt ({plan.seconds['tables']:.2f} s) and {len(outcomes)} "
                     f"tests run ({plan.seconds['tests']:.2f} s) from the SQL dbt compiled at its last build, "
                     f"{time.perf_counter() - started:.2f} s in all"
                     + "".join(f"; {uid.rsplit('.', 1)[-1]} rebuilt {plan.rebuilt.get(uid, 'in full')}" for uid in plan.by_date)
                     + (f"; tests warning: {', '.join(warned)}" if warned else ""))
    for uid, _ in plan.models:  # in dependency order, as Dagster requires of a multi-asset
        rebuilt = {"rebuilt": plan.rebuilt[uid]} if uid in plan.by_date else {}
        yield dg.MaterializeResult(asset_key=models[uid], metadata={"built_by": "compiled SQL replay (change run)"} | rebuilt)
    yield from _check_results(checks, outcomes)
    return True


def _test_after_dbt(context: dg.AssetExecutionContext, warehouse: DuckDBResource, stamp: str,
                    models: dict[str, dg.AssetKey], tests: dict[str, list[str]]):
    """A change run built by dbt itself ran no test (none selected): run the recorded ones now."""
    recorded = compiled_models.recorded_tests(warehouse.database, stamp, models, tests)
    with warehouse.get_connection() as conn:
        outcomes = compiled_models.run_tests(conn, recorded)
    context.log.info(f"change run: {len(outcomes)} of its models' {len(tests)} tests run after dbt "
                     "(the others were never compiled on this warehouse)")
    if any(o.should_error for o in outcomes):
        raise dg.Failure(str(compiled_models.ReplayTestFailed(outcomes, kept=True)))


def _selected_checks(context: dg.AssetExecutionContext) -> dict[str, dg.AssetCheckKey]:
    assets = context.assets_def
    return {assets.get_spec_for_check_key(k).metadata[UNIQUE_ID]: k for k in context.selected_asset_check_keys}


def _check_results(checks: dict[str, dg.AssetCheckKey], outcomes: list[compiled_models.TestOutcome]):
    """Results of the tests selected as checks (a run from the UI may select some)."""
    for o in outcomes:
        if o.unique_id in checks:
            yield _check_result(checks[o.unique_id], o)


def _check_result(key: dg.AssetCheckKey, outcome: compiled_models.TestOutcome) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        asset_key=key.asset_key, check_name=key.name, passed=not (outcome.should_error or outcome.should_warn),
        severity=dg.AssetCheckSeverity.ERROR if outcome.should_error else dg.AssetCheckSeverity.WARN,
        metadata={"failures": outcome.failures},
    )


def dbt_resource() -> DbtCliResource:
    return DbtCliResource(project_dir=lightning_bolt_dbt, dbt_executable=dbt_executable())
