"""One job per integration: its file and everything upstream of it (extract, config, models).

Every job that writes the warehouse carries the tag `lb/warehouse: write`; the instance files
limit runs with that tag to one at a time (DuckDB has one writer per file).
"""

import dagster as dg

WAREHOUSE_WRITE_TAG = {"lb/warehouse": "write"}


def integration_job(
    integration: str,
    file_asset: dg.AssetsDefinition,
    partitions_def: dg.PartitionsDefinition | None = None,
    also: dg.AssetSelection | None = None,
):
    """`also`: what every run that builds models must refresh too (the BI copy)."""
    selection = dg.AssetSelection.assets(file_asset).upstream()
    return dg.define_asset_job(
        f"{integration}_export",
        selection=selection | also if also is not None else selection,
        partitions_def=partitions_def,
        tags=WAREHOUSE_WRITE_TAG,
        description=f"Extract, models, {integration}'s file and its delivery.",
    )
