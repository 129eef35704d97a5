"""Watch the landing directory: a new or changed trade-date folder requests its partition.

The cursor maps each `<table>/date=YYYY-MM-DD` folder to a fingerprint of its files (names,
sizes, modification times), so a late or corrected file re-runs exactly its trade date, and a
change to the instruments files re-stages the reference data first.
"""

import json
from pathlib import Path

import dagster as dg

from eqs_pipeline.contract import DATED_TABLES
from eqs_pipeline.defs.jobs import DAILY_JOB, REFERENCE_JOB, daily_job, reference_job
from eqs_pipeline.defs.resources import EqsPathsResource
from eqs_pipeline.ingest.layout import landed_files


def _fingerprint(files: list[Path]) -> str:
    return json.dumps(sorted((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files))


def landing_fingerprints(landing: Path) -> dict[str, str]:
    """Fingerprint per trade date (over all dated tables) and for `instruments`."""
    prints: dict[str, list[Path]] = {}
    for table in DATED_TABLES:
        root = landing / table
        if not root.is_dir():
            continue
        for folder in sorted(root.glob("date=*")):
            prints.setdefault(folder.name.removeprefix("date="), []).extend(
                sorted(folder.iterdir())
            )
    result = {day: _fingerprint(files) for day, files in prints.items()}
    if (landing / "instruments").is_dir():
        result["instruments"] = _fingerprint(landed_files(landing, "instruments", None))
    return result


@dg.sensor(
    jobs=[reference_job, daily_job],
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.STOPPED,
)
def landing_sensor(context: dg.SensorEvaluationContext, paths: EqsPathsResource):
    """Request the partitions whose landed files are new or changed since the last tick."""
    landing = paths.landing_dir
    if not landing.is_dir():
        return dg.SkipReason(f"landing directory {landing} does not exist yet")
    seen = json.loads(context.cursor) if context.cursor else {}
    current = landing_fingerprints(landing)
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
