"""Asset jobs: reference data, the daily partitioned pipeline, the rolling-window assets and
the cost model's training.

Window assets (scorecards, recommendations) are unpartitioned and read a trailing window of
trade dates; they carry the tag `eqs/cadence: window` and run after the daily partitions. The
cost model's training (`eqs/cadence: train`) reads a longer window and runs weekly.
"""

import dagster as dg

REFERENCE_JOB = "eqs_reference"
DAILY_JOB = "eqs_daily"
WINDOW_JOB = "eqs_window"
TRAIN_JOB = "eqs_train"

CADENCE_TAG = "eqs/cadence"
WINDOW_TAGS = {CADENCE_TAG: "window"}
TRAIN_TAGS = {CADENCE_TAG: "train"}

reference_selection = dg.AssetSelection.assets(["staging", "instruments"])
window_selection = dg.AssetSelection.tag(CADENCE_TAG, "window")
train_selection = dg.AssetSelection.tag(CADENCE_TAG, "train")

reference_job = dg.define_asset_job(
    REFERENCE_JOB,
    selection=reference_selection,
    description="Stage instrument reference data (unpartitioned, replaced whole).",
)

daily_job = dg.define_asset_job(
    DAILY_JOB,
    selection=dg.AssetSelection.all() - reference_selection - window_selection - train_selection,
    description="Everything partitioned by trade date, from landed files to quality tables.",
)

window_job = dg.define_asset_job(
    WINDOW_JOB,
    selection=window_selection,
    description="Rolling-window assets over the trailing trade dates (run after the daily job).",
)

train_job = dg.define_asset_job(
    TRAIN_JOB,
    selection=train_selection,
    description="Retrain the expected-cost model on the trailing window of scored trade dates, "
    "score it out of sample against the fitted baselines and promote it if it passes "
    "(docs/MODEL.md). Weekly by schedule, or on demand.",
)
