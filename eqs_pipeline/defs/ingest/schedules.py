"""A weekday schedule for desks that land on a fixed timetable instead of using the sensor."""

import dagster as dg

from eqs_pipeline.defs.jobs import daily_job

daily_schedule = dg.build_schedule_from_partitioned_job(
    daily_job,
    hour_of_day=22,
    minute_of_hour=30,
    default_status=dg.DefaultScheduleStatus.STOPPED,
)
