"""Materialize the whole pipeline in process for a landing directory (what `eqs run` does).

The same Dagster definitions the UI loads are executed job by job: reference data first, then
every trade date present in the landing directory (optionally limited to a date range), then
the window assets, with a progress display. Resources point at the given landing directory and
warehouse file; the Parquet lake of the daily partitions sits beside the warehouse file
(`<folder>/lake`) unless given.

Unchanged work is skipped. A trade date whose inputs fingerprint (its landed files' names,
sizes and modification times, the instruments files', the settings, the cost model that
prices it and the code: `eqs_pipeline.ingest.fingerprint`) equals the one `staging.ingest_log` recorded when the date
was last published is not run again, nor is the reference job when the instruments files are
unchanged, nor the window job when its own fingerprint (the window's dates' fingerprints, the
venue settings, the code) equals the one stored in `venue.venue_scorecard`. `force=True`
(`eqs run --force`) runs everything.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import dagster as dg
import polars as pl
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from eqs_pipeline.costmodel.registry import in_service_tag
from eqs_pipeline.defs.jobs import DAILY_JOB, REFERENCE_JOB, TRAIN_JOB, WINDOW_JOB
from eqs_pipeline.defs.model.resources import read_registry
from eqs_pipeline.defs.partitions import not_a_partition, trade_date_partitions
from eqs_pipeline.defs.resources import EqsPathsResource, MetricSettingsResource
from eqs_pipeline.ingest import LandingError, discover_trade_dates
from eqs_pipeline.ingest.fingerprint import (
    INSTRUMENTS,
    files_bytes,
    inputs_fingerprint,
    landed_files,
)
from eqs_pipeline.storage.warehouse import columns_of, sql, table_exists

BATCH_BYTES = 32 * 2**20
"""Landed bytes (every dated table's files) of consecutive trade dates that one run takes
together: each run has a fixed cost (Dagster's run and step start, the schema checks, the
warehouse connection; about 2 s per date of 9k fills run alone), so small dates share runs,
while a date this large or larger runs alone (a run's steps hold its dates' outputs)."""
BATCH_DATES = 20
"""At most this many trade dates in one run (a failed date fails its run's dates)."""

# The CLI reports failures itself (see `_failure_message`); Dagster's console logger stays quiet.
QUIET_LOGGING = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


class RunFailed(RuntimeError):
    """A job of the run failed; the message says which step and why."""


@dataclass
class RunReport:
    """What a run did: the trade dates selected, those it left alone because their inputs are
    unchanged (`unchanged`), failed checks and skipped jobs (with why)."""

    warehouse: Path
    trade_dates: list[date]
    check_failures: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    unchanged: list[date] = field(default_factory=list)

    @property
    def materialized(self) -> list[date]:
        return [d for d in self.trade_dates if d not in self.unchanged]


def run_definitions(paths: EqsPathsResource, settings: MetricSettingsResource) -> dg.Definitions:
    """The project's definitions with resources bound to explicit paths instead of EQS_HOME."""
    from eqs_pipeline.definitions import defs as load_defs

    loaded = load_defs()
    return dg.Definitions(
        assets=loaded.assets,
        asset_checks=loaded.asset_checks,
        jobs=loaded.jobs,
        resources={"paths": paths, "settings": settings},
    )


def select_dates(available: list[date], start: date | None, end: date | None) -> list[date]:
    """The landed trade dates in [start, end]; a LandingError when there are none, or when one
    of them has no partition (a weekend folder, say), before anything runs."""
    chosen = [d for d in available if (start is None or d >= start) and (end is None or d <= end)]
    if not chosen:
        landed = ", ".join(map(str, available)) or "no date=YYYY-MM-DD folders"
        raise LandingError(
            f"no trade dates between {start or 'the beginning'} and {end or 'the end'}; "
            f"the landing directory has {landed}"
        )
    problems = [p for p in map(not_a_partition, chosen) if p]
    if problems:
        raise LandingError(
            "landed trade dates that cannot be materialized: "
            + "; ".join(problems)
            + ". Move those date= folders out of the landing directory (or leave them out with "
            "--start/--end)."
        )
    return chosen


def _failure_message(result: dg.ExecuteInProcessResult) -> str:
    messages = []
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data:
            error = event.step_failure_data.error
            detail = error.message.strip() if error else "unknown error"
            # Dagster wraps an error of the step's code: the cause says what went wrong. A
            # `dg.Failure` says it itself (with the trade date, in a run of several).
            if error and error.cls_name == "Failure":
                detail = detail.split(": ", 1)[-1]  # its description, less the class name
            elif error and error.cause:
                detail = error.cause.message.strip()
            messages.append(f"step {event.step_key}: {detail}")
    return "\n".join(messages) or "the run failed without a step failure (see the Dagster logs)"


def _failed_checks(result: dg.ExecuteInProcessResult) -> list[str]:
    failed = []
    for event in result.all_events:
        if event.event_type_value == "ASSET_CHECK_EVALUATION":
            evaluation = event.event_specific_data
            if not evaluation.passed:
                failed.append(
                    f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}"
                    + (
                        f" [{evaluation.partition}]"
                        if getattr(evaluation, "partition", None)
                        else ""
                    )
                )
    return failed


def _has_fills(paths: EqsPathsResource) -> bool:
    with paths.connect(read_only=True) as con:
        return table_exists(con, "quality.fill_quality") and bool(
            con.execute(sql("count_fills")).fetchall()[0][0]
        )


def _recorded_fingerprints(paths: EqsPathsResource) -> dict[str, str]:
    """What `staging.ingest_log` records each published trade date (`YYYY-MM-DD`) and the
    instruments (`instruments`) were staged from; {} for a warehouse that does not exist yet,
    or predates the fingerprints. A date recorded with several fingerprints (its files staged
    by different runs) is left out: it runs again."""
    if not Path(paths.warehouse_path).exists():
        return {}
    with paths.connect(read_only=True) as con:
        if "inputs_fingerprint" not in columns_of(con, "staging.ingest_log"):
            return {}
        rows = con.execute(sql("select_recorded_fingerprints")).fetchall()
    return {key: fingerprint for key, fingerprint, versions in rows if versions == 1}


def _window_unchanged(paths: EqsPathsResource) -> bool:
    """Whether the stored window tables were computed from what the window holds now: the
    scorecard's inputs fingerprint equals the current window's, and the routing
    recommendations and the window's venue events are there."""
    from eqs_pipeline.defs.venues.resources import VenueConfig
    from eqs_pipeline.defs.venues.window import (
        LakeWindow,
        NoVenueData,
        WarehouseWindow,
        inputs_fingerprint,
    )
    from eqs_pipeline.storage import lake

    settings = VenueConfig().settings()
    with paths.connect(read_only=True) as con:
        tables = (
            "venue.venue_scorecard",
            "venue.routing_recommendations",
            "venue.venue_performance_events",
            "monitor.alerts",
        )
        if not all(table_exists(con, t) for t in tables) or "inputs_fingerprint" not in (
            columns_of(con, "venue.venue_scorecard")
        ):
            return False
        stored = con.execute(sql("select_window_state")).fetchall()
        events = con.execute(sql("count_window_events"), {"window_end": stored[0][1]}).fetchall()
        if not events[0][0]:  # no scorecard, or no events of its window
            return False
        source = (
            WarehouseWindow(con) if lake.is_remote(paths.lake_root) else LakeWindow(paths.lake_root)
        )
        try:
            dates = source.trade_dates(settings.window_days)
        except NoVenueData:
            return False
        if stored[0][0] != inputs_fingerprint(con, dates[0], dates[-1], settings):
            return False
        return _algo_window_unchanged(paths, con, source)


def _algo_window_unchanged(paths: EqsPathsResource, con, source) -> bool:
    """Whether the stored algo tables were computed from the algo window as it is now: the
    algo scorecard's inputs fingerprint (the window's dates, settings, code and the cost model
    in service after it) equals the current one, and every algo table is there."""
    from eqs_pipeline.defs.algos.assets import KEYS, SCORECARD_KEY
    from eqs_pipeline.defs.algos.resources import AlgoConfig
    from eqs_pipeline.defs.algos.window import algo_fingerprint, model_after
    from eqs_pipeline.defs.model.resources import read_registry

    tables = [".".join(key.path) for key in KEYS]
    scorecard = ".".join(SCORECARD_KEY.path)
    if not all(table_exists(con, t) for t in tables) or "inputs_fingerprint" not in (
        columns_of(con, scorecard)
    ):
        return False
    settings = AlgoConfig().settings()
    dates = source.trade_dates(settings.window_days)
    model = model_after(read_registry(paths), dates[-1])
    stored = con.execute(sql("select_algo_window_state")).fetchall()
    return stored[0][0] == algo_fingerprint(con, dates[0], dates[-1], settings, model)


def batches(dates: list[date], sizes: dict[date, int]) -> list[list[date]]:
    """`dates` cut into runs: consecutive trade-date partitions (no partition skipped between
    them) of at most `BATCH_DATES` dates and `BATCH_BYTES` landed bytes together (`sizes`); a
    date larger than that is a run of its own."""
    out: list[list[date]] = []
    total = 0
    for day in dates:
        batch = out[-1] if out else None
        follows = batch is not None and _next_partition(batch[-1]) == day
        if follows and len(batch) < BATCH_DATES and total + sizes[day] <= BATCH_BYTES:
            batch.append(day)
            total += sizes[day]
        else:
            out.append([day])
            total = sizes[day]
    return out


def _next_partition(day: date) -> date | None:
    key = trade_date_partitions.get_next_partition_key(day.isoformat())
    return date.fromisoformat(key) if key else None


def _range_tags(batch: list[date]) -> dict[str, str]:
    """The tags of a run over the batch's partition range (none for one date, or none)."""
    if len(batch) <= 1:
        return {}
    return {
        ASSET_PARTITION_RANGE_START_TAG: batch[0].isoformat(),
        ASSET_PARTITION_RANGE_END_TAG: batch[-1].isoformat(),
    }


def _named(job_name: str, batch: list[date]) -> str:
    """What a step of the run is called in its progress and its failure."""
    if not batch:
        return f"job {job_name}"
    if len(batch) == 1:
        return f"trade date {batch[0]}"
    return f"trade dates {batch[0]} .. {batch[-1]}"


def _execute(
    defs: dg.Definitions, instance: dg.DagsterInstance, job_name: str, batch: list[date]
) -> dg.ExecuteInProcessResult:
    """One run of the job: unpartitioned, of one trade date, or of a range of them."""
    return defs.resolve_job_def(job_name).execute_in_process(
        instance=instance,
        partition_key=batch[0].isoformat() if len(batch) == 1 else None,
        tags=_range_tags(batch),
        run_config=QUIET_LOGGING,
        raise_on_error=False,
    )


def _has_assets(defs: dg.Definitions, job_name: str) -> bool:
    return bool(defs.resolve_job_def(job_name).asset_layer.executable_asset_keys)


def run_pipeline(
    landing: Path | str,
    warehouse: Path,
    *,
    start: date | None = None,
    end: date | None = None,
    exports: Path | str | None = None,
    lake: Path | str | None = None,
    settings: MetricSettingsResource | None = None,
    on_progress: Callable[[str, int, int], None] | None = None,
    force: bool = False,
) -> RunReport:
    """Materialize reference data, every selected trade date, then the window assets; what is
    unchanged since it was last published is skipped unless `force` (the module docstring).

    `landing` is a folder or an object-store URL (`eqs_pipeline.storage.store`), and so is `lake`
    (`eqs_pipeline.storage.lake`; default `<warehouse folder>/lake`). `on_progress(step, done, total)`
    is called before each job and once at the end. Raises RunFailed when a job fails (blocking
    checks included).
    """
    dates = select_dates(discover_trade_dates(landing), start, end)
    settings = settings or MetricSettingsResource()
    paths = EqsPathsResource(
        home=str(warehouse.parent),
        landing=str(landing),
        warehouse=str(warehouse),
        exports=str(exports or warehouse.parent / "exports"),
        lake=str(lake or warehouse.parent / "lake"),
    )
    report = RunReport(warehouse=warehouse, trade_dates=dates)
    landed = landed_files(landing)
    config = settings.fingerprint()
    models = read_registry(paths)
    current = {
        d.isoformat(): inputs_fingerprint(
            landed[d.isoformat()], landed[INSTRUMENTS], f"{config}\n{in_service_tag(models, d)}"
        )
        for d in dates
    }
    current[INSTRUMENTS] = inputs_fingerprint([], landed[INSTRUMENTS], config)
    recorded = {} if force else _recorded_fingerprints(paths)
    report.unchanged = [d for d in dates if recorded.get(d.isoformat()) == current[d.isoformat()]]
    todo = report.materialized
    defs = run_definitions(paths, settings)
    instance = (
        dg.DagsterInstance.get() if os.getenv("DAGSTER_HOME") else dg.DagsterInstance.ephemeral()
    )
    sizes = {d: files_bytes(landed[d.isoformat()]) for d in todo}
    steps: list[tuple[str, list[date]]] = []
    if todo and recorded.get(INSTRUMENTS) != current[INSTRUMENTS]:
        steps.append((REFERENCE_JOB, []))
    steps += [(DAILY_JOB, batch) for batch in batches(todo, sizes)]
    if _has_assets(defs, WINDOW_JOB) and (todo or force or not _window_unchanged(paths)):
        steps.append((WINDOW_JOB, []))
    with instance:
        for done, (job_name, batch) in enumerate(steps):
            if on_progress:
                on_progress(_named(job_name, batch), done, len(steps))
            if job_name == WINDOW_JOB and not _has_fills(paths):
                report.skipped.append(
                    f"{WINDOW_JOB}: the warehouse has no fills, so there is no venue window"
                )
                continue
            result = _execute(defs, instance, job_name, batch)
            report.check_failures += _failed_checks(result)
            if not result.success:
                raise RunFailed(f"{_named(job_name, batch)} failed:\n{_failure_message(result)}")
        if on_progress:
            on_progress("done", len(steps), len(steps))
    return report


@dataclass
class DropReport:
    """What `drop_trade_date` removed: rows per warehouse table, lake tables, export files."""

    warehouse_rows: dict[str, int]
    lake_files: list[str]
    exports: list[str]


def drop_trade_date(
    day: date, warehouse: Path, *, lake: Path | str | None = None, exports: Path | str | None = None
) -> DropReport:
    """Remove one trade date everywhere the daily job put it: its rows of every daily warehouse
    table (one transaction), its lake partitions and its event export. For a date landed by
    mistake (the wrong folder name) and since moved: re-running the wrong date cannot clear it,
    because it has no landed files any more. The window tables (scorecard, routing) keep the
    date until the window job runs again; Dagster keeps its record of the materializations."""
    from eqs_pipeline.defs.venues.window import CHILD_ROWS, FILL_ROWS
    from eqs_pipeline.defs.warehouse.assets import DAILY_TABLES, lake_views
    from eqs_pipeline.storage import lake as lake_files
    from eqs_pipeline.storage.exports import EXPORT_FILE
    from eqs_pipeline.storage.warehouse import (
        connect,
        count_partition,
        is_view,
        replace_with_view,
        transaction,
    )

    lake = lake or warehouse.parent / "lake"
    exports = exports or warehouse.parent / "exports"
    deleted: dict[str, int] = {}
    with connect(warehouse) as con, transaction(con):
        for table in DAILY_TABLES:
            if table_exists(con, table):
                deleted[table] = count_partition(con, table, day)
                if not is_view(con, table):  # a view's rows go with its lake partition
                    con.execute(sql("delete_partition", table=table), {"trade_date": day})
    removed = [t for t in DAILY_TABLES if lake_files.delete(lake, t, day)]
    for rows in (FILL_ROWS, CHILD_ROWS):  # the window's stored venue rows of the date
        lake_files.delete(lake, rows, day)
    with connect(warehouse) as con, transaction(con):
        # A view over a table's last partition would fail once it is gone: it selects no rows.
        for table, statement in lake_views(str(lake)).items():
            if table_exists(con, table):
                replace_with_view(con, table, statement)
    export = lake_files.join(
        exports, "execution_quality_events", f"date={day.isoformat()}", EXPORT_FILE
    )
    return DropReport(
        {t: n for t, n in deleted.items() if n},
        removed,
        [export] if lake_files.remove(export) else [],
    )


@dataclass
class TrainReport:
    """What a training did: the registry row of the model it trained (None: none, and
    `message` says why)."""

    model: dict | None
    message: str


def train_model(
    warehouse: Path,
    *,
    lake: Path | str | None = None,
    models: Path | str | None = None,
    as_of: date | None = None,
    config: dict | None = None,
    settings: MetricSettingsResource | None = None,
) -> TrainReport:
    """Run `eqs_train` on the warehouse's scored trade dates (what `eqs train` does): train the
    cost model as of `as_of` (default: the day after the latest scored date) with `config`
    (fields of `defs.model.resources.CostTrainingConfig`). Raises RunFailed when the step fails;
    a model that is not promoted is a report, not a failure."""
    settings = settings or MetricSettingsResource()
    paths = EqsPathsResource(
        home=str(warehouse.parent),
        warehouse=str(warehouse),
        lake=str(lake or warehouse.parent / "lake"),
        models=str(models or warehouse.parent / "models"),
    )
    defs = run_definitions(paths, settings)
    op_config = dict(config or {}) | ({"as_of": as_of.isoformat()} if as_of else {})
    run_config = QUIET_LOGGING | {"ops": {"model__model_versions": {"config": op_config}}}
    instance = (
        dg.DagsterInstance.get() if os.getenv("DAGSTER_HOME") else dg.DagsterInstance.ephemeral()
    )
    with instance:
        result = defs.resolve_job_def(TRAIN_JOB).execute_in_process(
            instance=instance, run_config=run_config, raise_on_error=False
        )
    # A model the promotion rule refuses fails the blocking `promotable` check, and so the run,
    # after its row is recorded: that is a report. Without a materialization the step failed.
    materializations = result.asset_materializations_for_node("model__model_versions")
    if not materializations:
        raise RunFailed(f"{TRAIN_JOB} failed:\n{_failure_message(result)}")
    (materialization,) = materializations
    meta = {k: v.value for k, v in materialization.metadata.items()}
    if "model_version" not in meta:
        return TrainReport(None, str(meta.get("outcome", "no model was trained")))
    rows = read_registry(paths).filter(pl.col("model_version") == meta["model_version"])
    return TrainReport(rows.row(0, named=True), str(meta["reason"]))
