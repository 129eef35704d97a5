"""A weekday schedule for desks that land on a fixed timetable instead of using the sensor."""

import dagster as dg

from eqs_pipeline.defs.jobs import daily_job

# After the US close, when the day's files have landed.
SCHEDULE_CRON = "30 18 * * 1-5"
SCHEDULE_TIMEZONE = "America/New_York"


@dg.schedule(
    cron_schedule=SCHEDULE_CRON,
    execution_timezone=SCHEDULE_TIMEZONE,
    job=daily_job,
    default_status=dg.DefaultScheduleStatus.STOPPED,
)
def daily_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """Materialize the trade date of the tick (New York calendar day)."""
    trade_date = context.scheduled_execution_time.date().isoformat()
    return dg.RunRequest(run_key=trade_date, partition_key=trade_date)
