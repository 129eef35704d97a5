"""The cost model's weekly retraining (docs/MODEL.md): Saturday morning, after the week's last
trade date has been scored. Stopped by default, like the daily schedule."""

import dagster as dg

from eqs_pipeline.defs.jobs import train_job

TRAIN_CRON = "0 6 * * 6"
TRAIN_TIMEZONE = "America/New_York"

weekly_training = dg.ScheduleDefinition(
    name="weekly_cost_model_training",
    cron_schedule=TRAIN_CRON,
    execution_timezone=TRAIN_TIMEZONE,
    job=train_job,
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Retrain the expected-cost model on the trailing window (eqs_train).",
)
