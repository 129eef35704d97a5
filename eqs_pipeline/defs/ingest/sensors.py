"""Watch the landing directory: a new or changed trade-date folder requests its partition.

The cursor maps each trade date (over the `<table>/date=YYYY-MM-DD` folders of every dated
table) to a fingerprint of its files (table folder, name, size, modification time), so a late,
corrected or moved file re-runs exactly its trade date. A change to the instruments files
requests the reference run alone: the trade dates wait (they stay out of the cursor) until that
run has succeeded, so that no date is staged against missing or outdated reference data. A tick
lists the whole landing once (on object storage one paginated LIST of the prefix, not one per
folder), so it stays cheap with years of dates landed.
"""

import json
from datetime import date

import dagster as dg
from dagster._core.storage.tags import RUN_KEY_TAG

from eqs_pipeline.defs.ingest.assets import INSTRUMENTS_KEY
from eqs_pipeline.defs.jobs import DAILY_JOB, REFERENCE_JOB, daily_job, reference_job
from eqs_pipeline.defs.partitions import not_a_partition
from eqs_pipeline.defs.resources import EqsPathsResource
from eqs_pipeline.ingest.fingerprint import files_fingerprint, landed_files
from eqs_pipeline.ingest.layout import DATE_PREFIX, landing_exists

_WAITING = {
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.MANAGED,
    dg.DagsterRunStatus.CANCELING,
}


def _unusable(key: str) -> str | None:
    try:
        return not_a_partition(date.fromisoformat(key))
    except ValueError:
        return "not a YYYY-MM-DD date"


@dg.sensor(
    jobs=[reference_job, daily_job],
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.STOPPED,
)
def landing_sensor(context: dg.SensorEvaluationContext, paths: EqsPathsResource):
    """Request the partitions whose landed files are new or changed since the last tick; the
    reference data first when its files changed (see the module docstring)."""
    landing = paths.landing_root
    if not landing_exists(landing):
        return dg.SkipReason(f"landing directory {landing} does not exist yet")
    seen = json.loads(context.cursor) if context.cursor else {}
    landed = landed_files(landing)
    # A folder with no partition (a weekend, say) is named every tick and left out, so that
    # it neither fails the tick nor holds back the dates landed beside it.
    for key in sorted(landed):
        problem = key != "instruments" and _unusable(key)
        if problem:
            context.log.warning(f"landing {landing}: {DATE_PREFIX}{key} ignored: {problem}")
            del landed[key]
    current = {key: files_fingerprint(files) for key, files in landed.items()}
    unchanged = {key for key in landed if seen.get(key) == current[key]}
    for key in sorted(set(seen) - set(current)):
        if key != "instruments":
            context.log.warning(
                f"landing {landing}: {DATE_PREFIX}{key} is gone; its rows stay in the lake and "
                f"the warehouse until removed (`eqs drop-date {key}`)"
            )
    # The cursor moves on every tick (a gone date is named once), except for the dates that
    # are not requested yet: they keep their old print.
    cursor = {key: current[key] for key in unchanged}
    dates = sorted(k for k in current if k != "instruments" and k not in unchanged)
    held = {day: seen[day] for day in dates if day in seen}
    if "instruments" in current and "instruments" not in unchanged:
        if dates:
            context.log.info(f"{len(dates)} trade date(s) wait for the reference run")
        request = dg.RunRequest(
            run_key=f"instruments:{current['instruments']}", job_name=REFERENCE_JOB
        )
        cursor |= {"instruments": current["instruments"], **held}
        return dg.SensorResult(run_requests=[request], cursor=json.dumps(cursor))
    waiting = _reference_pending(context, current.get("instruments")) if dates else None
    if not dates or waiting:
        reason = (
            f"{len(dates)} trade date(s) wait: {waiting}"
            if dates
            else "no new or changed landing files"
        )
        return dg.SensorResult(skip_reason=reason, cursor=json.dumps(cursor | held))
    requests = [
        dg.RunRequest(run_key=f"{day}:{current[day]}", job_name=DAILY_JOB, partition_key=day)
        for day in dates
    ]
    cursor |= {day: current[day] for day in dates}
    return dg.SensorResult(run_requests=requests, cursor=json.dumps(cursor))


def _reference_pending(context: dg.SensorEvaluationContext, instruments: str | None) -> str | None:
    """Why the trade dates must wait for the reference run this sensor requested for the
    current instruments files, or None: it succeeded, none was requested (the reference data
    was staged another way), or staging/instruments has been materialized since it failed."""
    if instruments is None:
        return None
    records = context.instance.get_run_records(
        filters=dg.RunsFilter(tags={RUN_KEY_TAG: f"instruments:{instruments}"}), limit=1
    )
    if not records or records[0].dagster_run.status == dg.DagsterRunStatus.SUCCESS:
        return None
    run = records[0].dagster_run
    if run.status in _WAITING:
        return f"the reference run {run.run_id} is {run.status.value.lower()}"
    latest = context.instance.get_latest_materialization_event(INSTRUMENTS_KEY)
    if latest is not None and latest.timestamp > records[0].create_timestamp.timestamp():
        return None
    return (
        f"the reference run {run.run_id} {run.status.value.lower()}: fix the instruments files "
        "(a new version requests it again) or materialize staging/instruments by hand"
    )
