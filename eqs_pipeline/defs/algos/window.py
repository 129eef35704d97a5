"""Read the algo analysis' inputs: the window's orders, the instruments, the cost model in
service after the window and the orders it was trained on.

The orders come from the same sources as the venue window (`defs.venues.window`: the Parquet
lake where it is a local folder, else the warehouse), one trade date at a time; a date holds
one row per parent order, so the whole window is small next to its fills (a 20-date window of
10M fills: 210k orders).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, timedelta

import duckdb
import polars as pl

from eqs_pipeline.algos.frames import order_columns
from eqs_pipeline.algos.selection import SUPPORT_INPUTS
from eqs_pipeline.algos.settings import AlgoSettings
from eqs_pipeline.core.contract import CONTRACT
from eqs_pipeline.costmodel import registry
from eqs_pipeline.defs.model.resources import ModelsInService
from eqs_pipeline.defs.resources import EqsPathsResource
from eqs_pipeline.defs.venues.window import (
    LakeWindow,
    WarehouseWindow,
    WindowSource,
    inputs_fingerprint,
)
from eqs_pipeline.storage import lake, warehouse

# More trade dates than any lake holds: `trade_dates` of all of them.
_ALL_DATES = 1_000_000


@dataclass(frozen=True)
class AlgoInputs:
    """The window's orders (`order_columns` of quality.order_quality), its dates, the
    instruments, the cost model in service after it (None: none promoted yet) and the rows of
    the orders that model learned from (`SUPPORT_INPUTS`; none without a model)."""

    orders: pl.DataFrame
    dates: list[date]
    instruments: pl.DataFrame
    model: object | None  # CostModelArtifact, imported where used (SciPy)
    model_version: str | None
    training_orders: pl.DataFrame


def _source(paths: EqsPathsResource, con: duckdb.DuckDBPyConnection | None) -> WindowSource:
    if con is None:
        return LakeWindow(paths.lake_root)
    return WarehouseWindow(con)


def _orders(
    paths: EqsPathsResource,
    con: duckdb.DuckDBPyConnection | None,
    dates: list[date],
    columns: tuple[str, ...] | None,
) -> pl.DataFrame:
    """The dates' order_quality rows, only `columns` of them (None: `order_columns` of what
    each date holds: a partition written before an optional column existed lacks it). Only
    what is used is read: the table has about 75 columns, the analysis needs 45."""
    source = _source(paths, con)
    held = None if con is None else warehouse.columns_of(con, "quality.order_quality")
    frames = []
    for day in dates:
        wanted = columns
        if wanted is None:
            if held is None:  # the lake: the date's own file says what it holds
                path = lake.partition_path(paths.lake_root, "quality.order_quality", day)
                available = list(pl.read_parquet_schema(path))
            else:
                available = held
            wanted = tuple(order_columns(available))
        frames.append(source.reader(day)("order_quality", None, list(wanted)))
    return pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame()


def _instruments(paths: EqsPathsResource, con: duckdb.DuckDBPyConnection | None) -> pl.DataFrame:
    schema = CONTRACT["instruments"].polars_schema
    if con is None:
        return lake.read(paths.lake_root, "staging.instruments", None, schema)
    return warehouse.read_table(con, "staging.instruments", schema)


def read_inputs(
    paths: EqsPathsResource, window_days: int, warn, con: duckdb.DuckDBPyConnection | None = None
) -> AlgoInputs:
    """The inputs of the last `window_days` trade dates, from the lake (`con` None) or the
    warehouse on `con`; `warn(message)` reports a model passed over (damaged artifact).
    `NoVenueData` when no date is scored yet."""
    source = _source(paths, con)
    dates = source.trade_dates(window_days)
    orders = _orders(paths, con, dates, None)
    models = ModelsInService.of(paths, warn)
    # The model that would price the day after the window: the newest promoted one.
    after = dates[-1] + timedelta(days=1)
    model = models.for_date(after)
    version = model.version if model is not None else None  # type: ignore[attr-defined]
    schema = dict.fromkeys(SUPPORT_INPUTS, pl.String) | {
        "size_pct_adv": pl.Float64,
        "target_participation": pl.Float64,
    }
    training = pl.DataFrame(schema=schema)
    if version is not None:
        row = models.registry.filter(pl.col("model_version") == version).row(0, named=True)
        every = source.trade_dates(_ALL_DATES)
        learned = [d for d in every if row["train_start"] <= d <= row["holdout_end"]]
        training = _orders(paths, con, learned, SUPPORT_INPUTS)
    return AlgoInputs(orders, dates, _instruments(paths, con), model, version, training)


def algo_fingerprint(
    con: duckdb.DuckDBPyConnection,
    start: date,
    end: date,
    settings: AlgoSettings,
    model_version: str | None,
) -> str:
    """What the algo tables of the window from `start` to `end` are computed from: its trade
    dates' inputs, the settings, the code (`defs.venues.window.inputs_fingerprint`) and the
    cost model in service after it (a newly promoted model changes the selection)."""
    window = inputs_fingerprint(con, start, end, settings)
    return hashlib.sha256(f"{window}\n{model_version or 'no model'}".encode()).hexdigest()


def model_after(models: pl.DataFrame, end: date) -> str | None:
    """The version of the cost model in service after the window that ends on `end`."""
    found = registry.candidates(models, end + timedelta(days=1))
    return found[0][0] if found else None
