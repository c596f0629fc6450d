"""One job per integration: its output and everything upstream of it (extract, config, models).

Every job that writes the warehouse carries the tag `lb/warehouse: write`; the instance files
limit runs with that tag to one at a time (DuckDB has one writer per file).
"""

import dagster as dg

from lb_pipelines.integrations.assets import partitions_of
from lb_pipelines.integrations.declaration import Integration

WAREHOUSE_WRITE_TAG = {"lb/warehouse": "write"}


def integration_job(integration: Integration, also: dg.AssetSelection | None = None):
    """`also`: what every run that builds models must refresh too (the BI copy)."""
    selection = dg.AssetSelection.assets(integration.output_key).upstream()
    return dg.define_asset_job(
        integration.job_name,
        selection=selection | also if also is not None else selection,
        partitions_def=partitions_of(integration),
        tags=WAREHOUSE_WRITE_TAG,
        description=f"Extract, models, {integration.title}: its output and its delivery.",
    )
