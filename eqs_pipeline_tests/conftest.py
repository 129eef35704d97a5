"""Fixtures shared across the test tree: small simulated landing directories and warehouses."""

from __future__ import annotations

import fcntl
import logging
import os
import pickle
import shutil
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import duckdb
import pytest
from hypothesis import HealthCheck, Phase
from hypothesis import settings as hypothesis_settings

from eqs_pipeline.simulate import SimulationConfig, simulate_to_landing

if TYPE_CHECKING:
    from eqs_pipeline.runtime.runner import RunReport

# Hypothesis profiles, chosen by HYPOTHESIS_PROFILE (default "ci"):
# - "ci": few examples, the same ones on every run (derandomized, no example database), so the
#   suite stays quick and reproducible. It does not shrink: a failure shows the example as it
#   was generated, at once (shrinking a landing of files takes minutes).
# - "ci-shrink": the same examples, a failure shrunk to a minimal one (to debug a "ci" failure).
# - "deep" (`make test-deep`): many more examples, drawn afresh each run and shrunk; a failure
#   prints the `@reproduce_failure` blob that replays it.
# None runs the "explain" phase (it reruns a failing example a hundred times to annotate it).
# A test that sets its own `max_examples` takes the larger of its own and the profile's
# (eqs_pipeline_tests/quality/test_properties.py).
_COMMON = {
    "deadline": None,
    "database": None,
    "suppress_health_check": [HealthCheck.too_slow],
}
_NO_EXPLAIN = [p for p in Phase if p != Phase.explain]
hypothesis_settings.register_profile(
    "ci",
    max_examples=12,
    derandomize=True,
    phases=[p for p in _NO_EXPLAIN if p != Phase.shrink],
    **_COMMON,
)
hypothesis_settings.register_profile(
    "ci-shrink", hypothesis_settings.get_profile("ci"), phases=_NO_EXPLAIN
)
hypothesis_settings.register_profile(
    "deep", max_examples=300, print_blob=True, phases=_NO_EXPLAIN, **_COMMON
)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# Tiers: `-m "not integration"` (`make test-unit`) is the unit tier; `make test` runs
# everything, on two workers (pytest-xdist). A test is marked `integration` where it runs
# Dagster jobs or the pipeline, starts processes or servers, or simulates many desks for a
# statistic; one that asks for a built warehouse (the fixtures below) is marked here.
# Integration tests run first, so that the long ones start early and the short ones even out
# the workers' ends.
PIPELINE_FIXTURES = frozenset({"built_warehouse", "built_copy", "rerun_warehouse"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if PIPELINE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)
    items.sort(key=lambda item: item.get_closest_marker("integration") is None)


T = TypeVar("T")

SMALL = SimulationConfig(days=2, symbols=4, orders_per_day=40, seed=3)


def simulate_small(out: Path, cfg: SimulationConfig = SMALL) -> Path:
    simulate_to_landing(cfg, out)
    return out


def _once(factory: pytest.TempPathFactory, name: str, build: Callable[[Path], T]) -> T:
    """`build(folder)` run once in a test run, even across pytest-xdist's workers: the first to
    ask builds it under a file lock in the run's temporary folder (the workers share its
    parent), the others wait for it and read its result back."""
    base = factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent
    folder, result = base / name, base / f"{name}.pickle"
    with (base / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if result.exists():
            return pickle.loads(result.read_bytes())
        shutil.rmtree(folder, ignore_errors=True)  # a build that failed half-way
        folder.mkdir()
        value = build(folder)
        result.write_bytes(pickle.dumps(value))
        return value


def _build(root: Path) -> tuple[Path, Path, RunReport]:
    from eqs_pipeline.runtime.runner import run_pipeline  # Dagster: only where a test needs it

    landing = simulate_small(root / "landing")
    report = run_pipeline(landing, root / "warehouse.duckdb")
    return landing, root / "warehouse.duckdb", report


@pytest.fixture(scope="session")
def built_warehouse(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, RunReport]:
    """A small simulated landing directory run through the whole pipeline once (read-only use:
    the workers of a run share it): its folder holds `landing/`, `warehouse.duckdb`, `lake/`
    and `exports/`."""
    return _once(tmp_path_factory, "built", _build)


@pytest.fixture
def built_copy(
    built_warehouse: tuple[Path, Path, RunReport], tmp_path: Path
) -> tuple[Path, Path, RunReport]:
    """A writable copy of `built_warehouse` in `tmp_path` (landing, warehouse, lake, exports):
    for a test that changes a built warehouse, instead of running the pipeline again."""
    _, warehouse, report = built_warehouse
    shutil.copytree(warehouse.parent, tmp_path, dirs_exist_ok=True)
    return tmp_path / "landing", tmp_path / warehouse.name, report


@dataclass(frozen=True)
class Rerun:
    """A copy of the built warehouse run again (`rerun_warehouse`): what differs from the first
    build after each run, every table compared row by row (`golden.between`), and the export
    files (path and line count)."""

    warehouse: Path
    after_all: list[str]  # the whole landing again (--force)
    after_one: list[str]  # then its first trade date alone (one of its files touched)
    exports_before: dict[str, int]
    exports_after: dict[str, int]
    unchanged: RunReport  # the whole landing without --force, before touching: nothing changed
    touched: RunReport  # the whole landing, one landed file of the first date touched
    run_ids: dict[str, set[str]]  # the run that staged each date: "before" and "after" touching
    window_before: str  # the scorecard's inputs fingerprint before touching


def exported_lines(root: Path) -> dict[str, int]:
    """Every export file under `root`/exports, by its path below, with its number of lines."""
    exports = root / "exports"
    return {
        p.relative_to(exports).as_posix(): len(p.read_text().splitlines())
        for p in sorted(exports.rglob("*"))
        if p.is_file()
    }


def _staging_runs(warehouse: Path) -> dict[str, set[str]]:
    """The runs that staged each trade date (and the instruments), from staging.ingest_log."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute(
            "select coalesce(cast(trade_date as varchar), 'instruments'), run_id "
            "from staging.ingest_log"
        ).fetchall()
    runs: dict[str, set[str]] = {}
    for key, run in rows:
        runs.setdefault(key, set()).add(run)
    return runs


@pytest.fixture(scope="session")
def rerun_warehouse(
    built_warehouse: tuple[Path, Path, RunReport], tmp_path_factory: pytest.TempPathFactory
) -> Rerun:
    """The built warehouse rematerialized: the whole landing (forced), then again unchanged,
    then its first date alone, one of its files touched (once in a run, as
    `built_warehouse`)."""
    from eqs_pipeline.runtime.runner import run_pipeline
    from eqs_pipeline_tests import golden

    _, built, report = built_warehouse

    def rerun(root: Path) -> Rerun:
        shutil.copytree(built.parent, root, dirs_exist_ok=True)
        warehouse, first = root / built.name, report.trade_dates[0]
        again = run_pipeline(root / "landing", warehouse, force=True)
        assert again.check_failures == [] and again.materialized == report.trade_dates
        after_all = golden.between(warehouse, built)
        before = _staging_runs(warehouse)
        with duckdb.connect(str(warehouse), read_only=True) as con:
            window_before = con.execute(
                "select min(inputs_fingerprint) from venue.venue_scorecard"
            ).fetchall()[0][0]
        unchanged = run_pipeline(root / "landing", warehouse)
        landed = next((root / "landing" / "executions" / f"date={first}").iterdir())
        os.utime(landed, ns=(landed.stat().st_atime_ns, landed.stat().st_mtime_ns + 10**9))
        touched = run_pipeline(root / "landing", warehouse)
        after_one = golden.between(warehouse, built)
        exports_after = exported_lines(root)
        runs = {"before": before, "after": _staging_runs(warehouse)}
        return Rerun(
            warehouse,
            after_all,
            after_one,
            exported_lines(built.parent),
            exports_after,
            unchanged,
            touched,
            runs,
            window_before,
        )

    return _once(tmp_path_factory, "rerun", rerun)


BUCKET = "eqs-lake"


@pytest.fixture(scope="module")
def s3() -> Iterator[str]:
    """An empty bucket on a local S3 API served by moto; yields its URL. The AWS variables are
    what Polars' object store reads (an endpoint over plain HTTP needs AWS_ALLOW_HTTP); they are
    set for the module's tests and the processes they start."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    with pytest.MonkeyPatch.context() as env:
        for name, value in {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ALLOW_HTTP": "true",
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_REGION": "us-east-1",
        }.items():
            env.setenv(name, value)
        urllib.request.urlopen(urllib.request.Request(f"{endpoint}/{BUCKET}", method="PUT"))
        try:
            yield f"s3://{BUCKET}"
        finally:
            server.stop()
