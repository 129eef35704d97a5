"""Watch the landing directory: a new or changed trade-date folder requests its partition.

The cursor maps each trade date (over the `<table>/date=YYYY-MM-DD` folders of every dated
table) to a fingerprint of its files (names, sizes, modification times), so a late or corrected
file re-runs exactly its trade date, and a change to the instruments files re-stages the
reference data first. A tick lists the whole landing once (on object storage one paginated
LIST of the prefix, not one per folder), so it stays cheap with years of dates landed.
"""

import json
from collections import defaultdict
from datetime import date

import dagster as dg

from eqs_pipeline.contract import DATED_TABLES
from eqs_pipeline.defs.jobs import DAILY_JOB, REFERENCE_JOB, daily_job, reference_job
from eqs_pipeline.defs.partitions import not_a_partition
from eqs_pipeline.defs.resources import EqsPathsResource
from eqs_pipeline.ingest.layout import DATE_PREFIX, is_hidden, landing_exists
from eqs_pipeline.ingest.store import Entry, walk


def _fingerprint(files: list[Entry]) -> str:
    return json.dumps(sorted((f.name.rsplit("/", 1)[-1], f.size, f.mtime_ns) for f in files))


def landing_fingerprints(landing: str) -> dict[str, str]:
    """Fingerprint per trade date (over all dated tables) and for `instruments`."""
    prints: defaultdict[str, list[Entry]] = defaultdict(list)
    for entry in walk(landing):
        parts = entry.name.split("/")
        if parts[0] in DATED_TABLES and len(parts) in (2, 3) and parts[1].startswith(DATE_PREFIX):
            files = prints[parts[1].removeprefix(DATE_PREFIX)]  # an empty folder counts too
            if len(parts) == 3:
                files.append(entry)
        elif parts[0] == "instruments" and len(parts) == 2 and not is_hidden(parts[1]):
            prints["instruments"].append(entry)
    return {key: _fingerprint(files) for key, files in prints.items()}


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
    """Request the partitions whose landed files are new or changed since the last tick."""
    landing = paths.landing_root
    if not landing_exists(landing):
        return dg.SkipReason(f"landing directory {landing} does not exist yet")
    seen = json.loads(context.cursor) if context.cursor else {}
    current = landing_fingerprints(landing)
    # A folder with no partition (a weekend, say) is named every tick and left out, so that
    # it neither fails the tick nor holds back the dates landed beside it.
    for key in sorted(current):
        problem = key != "instruments" and _unusable(key)
        if problem:
            context.log.warning(f"landing {landing}: {DATE_PREFIX}{key} ignored: {problem}")
            del current[key]
    changed = sorted(k for k, v in current.items() if seen.get(k) != v)
    if not changed:
        return dg.SkipReason("no new or changed landing files")
    requests = []
    if "instruments" in changed:
        requests.append(
            dg.RunRequest(run_key=f"instruments:{current['instruments']}", job_name=REFERENCE_JOB)
        )
    for day in (k for k in changed if k != "instruments"):
        requests.append(
            dg.RunRequest(run_key=f"{day}:{current[day]}", job_name=DAILY_JOB, partition_key=day)
        )
    return dg.SensorResult(run_requests=requests, cursor=json.dumps(current))
