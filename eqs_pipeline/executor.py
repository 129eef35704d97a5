"""The executor of every job: Dagster's multiprocess executor, with step processes forked from a
server that has already imported the whole project.

Dagster runs each step of a run in its own process. Its default start method, `spawn`, starts
a fresh interpreter per step that imports Dagster, Polars, DuckDB, pandera, SciPy and every
module under `defs/` again: about 4 s per step on two cores, more than most daily steps compute,
and the reason a multiprocess backfill used to be no faster than a serial one. With `forkserver`
and the project's modules preloaded, the server imports all of that once per run and each step
is a fork of it.

Only imports happen in the server: no module under `defs/` runs a Polars or DuckDB query at
import time, so the server has no worker threads that a fork could leave half-copied.
"""

import pkgutil

import dagster as dg

import eqs_pipeline.defs


def project_modules() -> list[str]:
    """Every module under `eqs_pipeline.defs`: what `load_from_defs_folder` imports."""
    return sorted(
        module.name
        for module in pkgutil.walk_packages(eqs_pipeline.defs.__path__, "eqs_pipeline.defs.")
    )


RUNTIME_MODULES = [
    # The instance's SQLite storages (SQLAlchemy, Alembic), opened by every step process.
    "dagster._core.storage.sqlite_storage",
    "dagster._core.storage.event_log.sqlite",
    "dagster._core.storage.runs.sqlite",
    "dagster._core.storage.schedules.sqlite",
    "alembic.command",
    # pandera's Polars backend, registered on the first validation of a step.
    "pandera.backends.polars.register",
    "pandera.backends.polars.builtin_checks",
    # Parquet datasets and paths of the lake.
    "pyarrow.dataset",
    "upath",
]
"""Modules that steps import lazily, on first use: about 2 s per step when imported there.
A name a future version no longer has is skipped by the fork server (it ignores ImportError)."""

PRELOAD_MODULES = ["dagster", "eqs_pipeline.definitions", *project_modules(), *RUNTIME_MODULES]
"""What the fork server imports before it forks a step process."""

executor = dg.multiprocess_executor.configured(
    {"start_method": {"forkserver": {"preload_modules": PRELOAD_MODULES}}},
    name="multiprocess_forkserver",
)
