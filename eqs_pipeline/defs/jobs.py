"""Asset jobs: reference data, the daily partitioned pipeline."""

import dagster as dg

from eqs_pipeline.defs.partitions import trade_date_partitions

REFERENCE_JOB = "eqs_reference"
DAILY_JOB = "eqs_daily"

reference_job = dg.define_asset_job(
    REFERENCE_JOB,
    selection=dg.AssetSelection.assets(["staging", "instruments"]),
    description="Stage instrument reference data (unpartitioned, replaced whole).",
)

daily_job = dg.define_asset_job(
    DAILY_JOB,
    selection=dg.AssetSelection.all() - dg.AssetSelection.assets(["staging", "instruments"]),
    partitions_def=trade_date_partitions,
    description="Everything partitioned by trade date, from landed files to quality tables.",
)
