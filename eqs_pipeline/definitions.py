"""The one Dagster entry point: everything under `defs/`, run by the project's executor."""

from pathlib import Path

import dagster as dg

from eqs_pipeline.executor import executor


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions.merge(
        dg.load_from_defs_folder(path_within_project=Path(__file__).parent),
        dg.Definitions(executor=executor),
    )
