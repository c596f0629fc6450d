"""One job per integration: its file and everything upstream of it (extract, config, models).

Every job that writes the warehouse carries the tag `lb/warehouse: write`; the instance files
limit runs with that tag to one at a time (DuckDB has one writer per file).
"""

import dagster as dg

WAREHOUSE_WRITE_TAG = {"lb/warehouse": "write"}


def integration_job(
    integration: str, file_asset: dg.AssetsDefinition, partitions_def: dg.PartitionsDefinition | None = None
):
    return dg.define_asset_job(
        f"{integration}_export",
        selection=dg.AssetSelection.assets(file_asset).upstream(),
        partitions_def=partitions_def,
        tags=WAREHOUSE_WRITE_TAG,
        description=f"Extract, models, {integration}'s file and its delivery.",
    )
