"""The DuckDB warehouse: connections, partition-replacing writes and reads, without Dagster.

Every statement comes from a file in `sql/` (one statement per file). Values are bound as
parameters; identifiers (schema.table, column names) only ever come from trusted constants of
this package, never from user data.

A write replaces exactly what it owns in one transaction: `replace_partition` deletes the trade
date's rows and inserts the new ones, so re-materializing a partition never doubles or loses a
row, and a failure leaves the previous contents in place.

A write creates its table when missing: with the columns and types the registry declares
(`declare_tables`; `eqs_pipeline.tables` declares its tables when imported, since this package
cannot import it), else like the frame or file written.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import duckdb
import polars as pl

from eqs_pipeline.storage import lake

SCHEMAS = ("staging", "quality", "venue", "algo", "model", "benchmark", "monitor")


@functools.cache
def sql_dir() -> Path:
    """The `sql/` folder: shipped inside the wheel, or at the repository root in a checkout."""
    here = Path(__file__).parent  # eqs_pipeline/storage
    for candidate in (here.parent / "sql", here.parents[1] / "sql"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("the sql/ folder of eqs_pipeline is missing from this installation")


@functools.cache
def sql(name: str, **identifiers: str) -> str:
    """The statement in `sql/<name>.sql`, with trusted identifiers filled in."""
    text = (sql_dir() / f"{name}.sql").read_text()
    return text.format(**identifiers) if identifiers else text


LOCK_WAIT_S = 30.0
"""How long `connect` waits for another process to release the warehouse file (DuckDB holds one
lock on the file per process: one writer, or any number of readers)."""

_LOCK_HOLDER = re.compile(r"Conflicting lock is held in (?P<exe>.+?) \(PID (?P<pid>\d+)\)")


class WarehouseError(RuntimeError):
    """The warehouse file cannot be opened or created; the message names it and says why."""


class WarehouseBusy(WarehouseError):
    """Another process held the warehouse file for longer than the wait allowed."""


class WarehouseCorrupt(WarehouseError):
    """The warehouse file is not a DuckDB database DuckDB can read: garbage or truncated
    bytes, or a block whose checksum does not match."""


class WarehouseUnwritable(WarehouseError):
    """The warehouse's folder cannot be created, or the file cannot be opened for writing."""


# What DuckDB says when the file's bytes are not a database it can read.
_CORRUPT = re.compile(
    r"not a valid DuckDB database file|Corrupt database file|does not match stored checksum|"
    r"Could not read enough bytes",
    re.IGNORECASE,
)
_DENIED = re.compile(r"Permission denied|Read-only file system|Operation not permitted", re.I)


def connect(
    path: str | Path, *, read_only: bool = False, lock_wait_s: float = LOCK_WAIT_S
) -> duckdb.DuckDBPyConnection:
    """Open the warehouse file (created if missing), with UTC as the session time zone. A
    MotherDuck database (`md:<name>`) is passed to DuckDB as it is: no local folder to create or
    file to find (DuckDB loads its `motherduck` extension, downloaded on first use).

    A file locked by another process is retried for up to `lock_wait_s` seconds, then
    `WarehouseBusy` names the process that holds it. The wait covers the hand-over between the
    steps of the warehouse pool: Dagster frees the pool's slot when a step reports success,
    which can come before the step's process has exited, and the next holder may start in that
    gap.

    A file DuckDB cannot read as a database raises `WarehouseCorrupt`, a folder that cannot be
    created or a file that cannot be opened `WarehouseUnwritable`, any other failure to open it
    `WarehouseError`; each names the file."""
    if str(path).startswith("md:"):
        con = duckdb.connect(str(path), read_only=read_only)
        return _prepared(con, read_only)
    path = Path(path)
    if not read_only:
        _make_folder(path)
    elif not path.exists():
        raise FileNotFoundError(
            f"no warehouse at {path}: run `eqs run` or `eqs demo` first to build it"
        )
    deadline = time.monotonic() + lock_wait_s
    pause = 0.05
    while True:
        try:
            return _opened(path, read_only)
        except duckdb.IOException as exc:
            holder = _LOCK_HOLDER.search(str(exc))
            if holder is None:
                raise _unusable(path, exc, read_only) from exc
            if time.monotonic() >= deadline:
                raise WarehouseBusy(
                    f"the warehouse {path} is held by another process (PID "
                    f"{holder['pid']}, {holder['exe']}) for more than {lock_wait_s:g} s: one "
                    "process at a time may write it; wait for that run to finish or stop it"
                ) from exc
            time.sleep(min(pause, max(deadline - time.monotonic(), 0.0)))
            pause = min(pause * 2, 1.0)
        except duckdb.Error as exc:  # e.g. a SerializationException of a damaged file
            raise _unusable(path, exc, read_only) from exc


def _make_folder(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WarehouseUnwritable(
            f"cannot create the warehouse {path}: its folder cannot be created "
            f"({lake.why(exc, path)}); choose a warehouse path in a folder that can be written"
        ) from exc


def _opened(path: Path, read_only: bool) -> duckdb.DuckDBPyConnection:
    """The file opened and prepared; a DuckDB error other than a lock conflict (an
    `IOException`, which `connect` retries) is raised as the `WarehouseError` it means."""
    con = duckdb.connect(str(path), read_only=read_only)
    try:
        return _prepared(con, read_only)
    except duckdb.Error as exc:
        con.close()
        raise _unusable(path, exc, read_only) from exc


def _unusable(path: Path, exc: duckdb.Error, read_only: bool) -> WarehouseError:
    """The `WarehouseError` for a DuckDB error met while opening `path`."""
    detail = str(exc).strip()
    if _CORRUPT.search(detail):
        return _corrupt(path, detail)
    if _DENIED.search(detail):
        mode = "read" if read_only else "write"
        return WarehouseUnwritable(
            f"cannot open the warehouse {path} to {mode} it ({detail}); check the "
            "permissions of the file and its folder"
        )
    return WarehouseError(f"cannot open the warehouse {path} ({detail})")


def _corrupt(path: str | Path, detail: str) -> WarehouseCorrupt:
    return WarehouseCorrupt(
        f"the warehouse {path} is damaged or not a DuckDB database ({detail}); move it away (or "
        "restore a copy) and run `eqs run` to build it again from the landing directory"
    )


@contextmanager
def naming_damage(path: str | Path) -> Iterator[None]:
    """Raise a DuckDB error that reports a damaged file, met inside the block, as
    `WarehouseCorrupt` naming `path`; other errors pass unchanged. DuckDB checks a block's
    checksum when it reads the block, so most damage shows in a query, not when the file is
    opened, and its message names neither the file nor what to do."""
    try:
        yield
    except duckdb.Error as exc:
        detail = str(exc).strip()
        if _CORRUPT.search(detail):
            raise _corrupt(path, detail) from exc
        raise


def _prepared(con: duckdb.DuckDBPyConnection, read_only: bool) -> duckdb.DuckDBPyConnection:
    con.execute("set TimeZone = 'UTC'")
    if not read_only:
        for schema in SCHEMAS:
            con.execute(sql("create_schema", schema=schema))
    return con


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """All-or-nothing: commit on success, roll back on any error."""
    con.begin()
    try:
        yield con
    except BaseException:
        con.rollback()
        raise
    con.commit()


def table_exists(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    schema, name = table.split(".")
    return bool(
        con.execute(sql("select_table_columns"), {"schema": schema, "name": name}).fetchall()
    )


def columns_of(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    """The columns of `table` (or view), in order; [] when there is none."""
    schema, name = table.split(".")
    rows = con.execute(sql("select_table_columns"), {"schema": schema, "name": name}).fetchall()
    return [row[0] for row in rows]


def is_view(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    """Whether `table` is a view (False for a base table, or none)."""
    schema, name = table.split(".")
    return bool(con.execute(sql("select_view"), {"schema": schema, "name": name}).fetchall())


def replace_with_view(con: duckdb.DuckDBPyConnection, table: str, statement: str) -> None:
    """Make `table` the view `statement` creates (`create or replace view`), dropping the base
    table of that name first if a warehouse built before holds one. Call inside `transaction`."""
    if table_exists(con, table) and not is_view(con, table):
        con.execute(sql("drop_table", table=table))
    con.execute(statement)


def replace_with_table(con: duckdb.DuckDBPyConnection, table: str) -> None:
    """Drop the view `table` if there is one, so that a load creates the table (a lake moved
    to object storage, where the warehouse holds tables). Call inside `transaction`."""
    if is_view(con, table):
        con.execute(sql("drop_view", table=table))


ColumnTypes = Sequence[tuple[str, str]]
"""A table's columns in their order, each with its DuckDB type (`DOUBLE`, `TIMESTAMPTZ`, ...)."""

TableColumns = Callable[[str, ColumnTypes], ColumnTypes | None]
"""(table, the columns and types of what is written) -> the table's declared columns and types,
or None for a table nobody declared."""

_declared: TableColumns | None = None


def declare_tables(columns: TableColumns) -> None:
    """Have `columns` say what a table's columns and types are (`eqs_pipeline.tables` calls
    this when imported, with the registry's). A write that finds its table missing creates it
    with the declared columns, and one that finds it older adds the declared columns it lacks.
    A table `columns` does not declare (None) is created like the frame or file written, and a
    column it does not declare is added with the type written, as before."""
    global _declared
    _declared = columns


def create_table_statement(table: str, columns: ColumnTypes) -> str:
    """`create table if not exists` for `table` with `columns` (trusted identifiers)."""
    listed = ", ".join('"{}" {}'.format(c.replace('"', '""'), t) for c, t in columns)
    return sql("create_table", table=table, columns=listed)


def _sync_columns(
    con: duckdb.DuckDBPyConnection,
    table: str,
    source: str,
    params: Mapping[str, object] | None = None,
) -> None:
    """Create the table (with its declared columns, else like its source), or add the columns
    a newer version computes.

    `source` is `frame` (the frame registered as `_frame`) or `parquet` (the file `$path`).
    """
    params = dict(params or {})
    schema, name = table.split(".")
    existing = con.execute(sql("select_table_columns"), {"schema": schema, "name": name}).fetchall()
    types = [row[:2] for row in con.execute(sql(f"describe_{source}"), params).fetchall()]
    declared = _declared(table, types) if _declared is not None else None
    if not existing:
        if declared is None:
            con.execute(sql(f"create_table_like_{source}", table=table), params)
        else:
            con.execute(create_table_statement(table, declared))
        return
    known = {c for c, _ in existing}
    for column, data_type in declared if declared is not None else types:
        if column not in known:
            con.execute(
                sql("alter_table_add_column", table=table, column=column, data_type=data_type)
            )


def _sync_frame_columns(con: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame) -> None:
    con.register("_frame", frame.head(0).to_arrow())
    try:
        _sync_columns(con, table, "frame")
    finally:
        con.unregister("_frame")


def _insert(con: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame) -> None:
    if frame.height == 0:
        return
    con.register("_frame", frame.to_arrow())
    try:
        con.execute(sql("insert_frame", table=table))
    finally:
        con.unregister("_frame")


def replace_rows(
    con: duckdb.DuckDBPyConnection,
    table: str,
    frame: pl.DataFrame,
    delete: str,
    params: Mapping[str, object] | None = None,
) -> None:
    """Delete the rows the statement `sql/<delete>.sql` selects, then insert `frame`.

    Creates the table from the frame's schema first if needed. Call inside `transaction`.
    """
    _sync_frame_columns(con, table, frame)
    con.execute(sql(delete, table=table), dict(params or {}))
    _insert(con, table, frame)


def replace_partition(
    con: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame, trade_date: date
) -> None:
    """Replace the rows of `trade_date` in `table` with `frame` (call inside `transaction`)."""
    replace_rows(con, table, frame, "delete_partition", {"trade_date": trade_date})


def load_partitions(
    con: duckdb.DuckDBPyConnection,
    files: Mapping[str, str],
    trade_date: date,
    views: Mapping[str, str] | None = None,
) -> None:
    """`load_days` of one trade date."""
    load_days(con, {trade_date: files}, views)


def load_days(
    con: duckdb.DuckDBPyConnection,
    days: Mapping[date, Mapping[str, str]],
    views: Mapping[str, str] | None = None,
) -> None:
    """Replace the rows of each trade date in every table of its `files` with the rows of its
    Parquet file, and make every table of `views` the view its statement creates
    (`replace_with_view`), all in one transaction. DuckDB reads local files itself (in
    parallel, no round trip through Python), which keeps the pooled load step short. Row order
    inside a table carries no meaning (queries sort), so the insert may write row groups in any
    order: that lets DuckDB insert with every thread (the fill table of a 200k-fill day: 0.33 s
    instead of 0.76).

    A file on object storage (`lake.is_remote`) is read by Polars, with the credentials of the
    lake's other readers, and inserted from Arrow: DuckDB would need its `httpfs` extension,
    which it downloads on first use, and a machine without internet cannot."""
    con.execute("set preserve_insertion_order = false")
    try:
        with transaction(con):
            for table, statement in (views or {}).items():
                replace_with_view(con, table, statement)
            by_table: dict[str, dict[date, str]] = {}
            for trade_date, files in days.items():
                for table, path in files.items():
                    by_table.setdefault(table, {})[trade_date] = str(path)
            for table, paths in by_table.items():
                replace_with_table(con, table)
                remote = {d: p for d, p in paths.items() if lake.is_remote(p)}
                for trade_date, path in remote.items():
                    delete = {"trade_date": trade_date}
                    replace_rows(con, table, pl.read_parquet(path), "delete_partition", delete)
                local = {d: p for d, p in paths.items() if d not in remote}
                if not local:
                    continue
                # One statement each for all the dates' files: a run of twenty small dates
                # loads a table in one insert instead of twenty.
                params = {"path": list(local.values())}
                _sync_columns(con, table, "parquet", {"path": params["path"][0]})
                con.execute(sql("delete_partitions", table=table), {"trade_dates": list(local)})
                con.execute(sql("insert_parquet", table=table), params)
    finally:
        con.execute("reset preserve_insertion_order")


def count_partition(con: duckdb.DuckDBPyConnection, table: str, trade_date: date) -> int:
    """Rows of `trade_date` in `table`."""
    return con.execute(
        sql("count_partition_rows", table=table), {"trade_date": trade_date}
    ).fetchall()[0][0]


def count_partitions(
    con: duckdb.DuckDBPyConnection, table: str, trade_dates: Sequence[date]
) -> pl.DataFrame:
    """Rows of each of `trade_dates` in `table` (trade_date, warehouse_rows), in one query;
    a date without rows is left out."""
    return con.execute(
        sql("count_partitions_rows", table=table), {"trade_dates": list(trade_dates)}
    ).pl()


def replace_table(con: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame) -> None:
    """Replace every row of `table` with `frame` (call inside `transaction`)."""
    replace_rows(con, table, frame, "delete_all")


def read_partition(
    con: duckdb.DuckDBPyConnection,
    table: str,
    trade_date: date,
    schema: Mapping[str, pl.DataType] | None = None,
    columns: Sequence[str] | None = None,
    *,
    query: str = "select_partition",
    params: Mapping[str, object] | None = None,
) -> pl.DataFrame:
    """The rows of one trade date (only `columns` when given) that the statement `query`
    selects (`sql/<query>.sql`, with `params` besides the date: all of them by default);
    `schema` casts columns to the contract types when given."""
    names = ", ".join(f'"{c}"' for c in columns) if columns else "*"
    frame = con.execute(
        sql(query, table=table, columns=names), {"trade_date": trade_date, **(params or {})}
    ).pl()
    return _cast(frame, schema)


def detached(frame: pl.DataFrame) -> pl.DataFrame:
    """`frame` with columns of its own, for frames kept while DuckDB goes on reading.

    A frame read from DuckDB (`.pl()`) holds DuckDB's result memory without a copy, and one
    column kept holds the memory of every column of its result batch (Polars' `x * 1.0` is
    the same column, not a copy). A window of 20 trade dates read one date at a time and
    narrowed to its 15 columns kept 2 GiB more than its data that way (docs/PERFORMANCE.md,
    "Reading the window"). A gather of every row copies each column into memory Polars owns."""
    return frame.gather(pl.int_range(frame.height, eager=True))


def read_table(
    con: duckdb.DuckDBPyConnection, table: str, schema: Mapping[str, pl.DataType] | None = None
) -> pl.DataFrame:
    frame = con.execute(sql("select_all", table=table)).pl()
    return _cast(frame, schema)


def _cast(frame: pl.DataFrame, schema: Mapping[str, pl.DataType] | None) -> pl.DataFrame:
    if not schema:
        return frame
    return frame.with_columns(pl.col(c).cast(t) for c, t in schema.items() if c in frame.columns)
