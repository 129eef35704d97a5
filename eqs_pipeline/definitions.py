"""The one Dagster entry point: everything under `defs/`, run by the project's executor."""

import functools
from pathlib import Path

import dagster as dg

from eqs_pipeline.runtime.executor import executor


@dg.definitions
@functools.cache
def defs() -> dg.Definitions:
    """Built once per process: the executor's fork server builds them before it forks the step
    processes (`eqs_pipeline.runtime.preload`), so a step does not build them again."""
    return dg.Definitions.merge(
        dg.load_from_defs_folder(path_within_project=Path(__file__).parent),
        dg.Definitions(executor=executor),
    )
