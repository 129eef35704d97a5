"""Asset jobs: reference data, the daily partitioned pipeline, and the rolling-window assets.

Window assets (scorecards, recommendations, models) are unpartitioned and read a trailing window
of trade dates; they carry the tag `eqs/cadence: window` and run after the daily partitions.
"""

import dagster as dg

REFERENCE_JOB = "eqs_reference"
DAILY_JOB = "eqs_daily"
WINDOW_JOB = "eqs_window"

CADENCE_TAG = "eqs/cadence"
WINDOW_TAGS = {CADENCE_TAG: "window"}

reference_selection = dg.AssetSelection.assets(["staging", "instruments"])
window_selection = dg.AssetSelection.tag(CADENCE_TAG, "window")

reference_job = dg.define_asset_job(
    REFERENCE_JOB,
    selection=reference_selection,
    description="Stage instrument reference data (unpartitioned, replaced whole).",
)

daily_job = dg.define_asset_job(
    DAILY_JOB,
    selection=dg.AssetSelection.all() - reference_selection - window_selection,
    description="Everything partitioned by trade date, from landed files to quality tables.",
)

window_job = dg.define_asset_job(
    WINDOW_JOB,
    selection=window_selection,
    description="Rolling-window assets over the trailing trade dates (run after the daily job).",
)
