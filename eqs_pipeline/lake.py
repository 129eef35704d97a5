"""The Parquet lake: one file per table and trade date, written and read without Dagster.

Layout under the configured lake root (default `<EQS_HOME>/lake`):

    <lake>/<schema>/<table>/trade_date=YYYY-MM-DD/part-0.parquet   (daily tables)
    <lake>/<schema>/<table>/part-0.parquet                          (undated: instruments)

The daily compute steps read their inputs from, and write their outputs to, these files, never
the DuckDB file, so they can run in parallel processes; a load step copies a trade date into the
warehouse (see `warehouse.load_partitions`). A write replaces the whole file atomically (a
temporary file in the same folder, then a rename), so a reader sees the old or the new
partition, never half of one, and re-materializing a partition never doubles a row.

The root may also be an object-store URL (`s3://bucket/eqs/lake`): paths are then joined as
text and Polars writes the object directly (a PUT is atomic on object storage).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from datetime import date
from pathlib import Path

import polars as pl

PART = "part-0.parquet"


class MissingPartition(FileNotFoundError):
    """A lake partition an asset needs has not been written yet."""


def _remote(root: str | Path) -> bool:
    return "://" in str(root)


def _join(root: str | Path, *parts: str) -> str:
    return "/".join([str(root).rstrip("/"), *parts])


def partition_path(root: str | Path, table: str, trade_date: date | None) -> str:
    """Where `schema.table` of `trade_date` (None: the undated table) lives in the lake."""
    schema, name = table.split(".")
    if trade_date is None:
        return _join(root, schema, name, PART)
    return _join(root, schema, name, f"trade_date={trade_date.isoformat()}", PART)


def exists(root: str | Path, table: str, trade_date: date | None) -> bool:
    path = partition_path(root, table, trade_date)
    return True if _remote(path) else Path(path).is_file()


def write(root: str | Path, table: str, frame: pl.DataFrame, trade_date: date | None) -> str:
    """Replace the partition's file with `frame` (atomically); returns its path."""
    path = partition_path(root, table, trade_date)
    if _remote(path):
        frame.write_parquet(path)
        return path
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".part-", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        frame.write_parquet(tmp)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read(
    root: str | Path,
    table: str,
    trade_date: date | None,
    schema: Mapping[str, pl.DataType] | None = None,
) -> pl.DataFrame:
    """The partition's rows; `schema` casts columns to the contract types when given."""
    path = partition_path(root, table, trade_date)
    if not exists(root, table, trade_date):
        what = f"trade date {trade_date}" if trade_date else "its rows"
        raise MissingPartition(
            f"{table} has no lake partition for {what} at {path}: materialize the upstream "
            "asset for this partition first"
        )
    frame = pl.read_parquet(path)
    if schema:
        frame = frame.with_columns(
            pl.col(c).cast(t) for c, t in schema.items() if c in frame.columns
        )
    return frame


def count(root: str | Path, table: str, trade_date: date | None) -> int:
    """Rows of the partition (0 when it does not exist), from the Parquet footer."""
    if not exists(root, table, trade_date):
        return 0
    return pl.scan_parquet(partition_path(root, table, trade_date)).select(pl.len()).collect()[0, 0]
