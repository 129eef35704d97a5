"""Golden outputs: every warehouse table of the fixed small simulated desk, kept as Parquet.

The test suite builds the warehouse of `eqs_pipeline_tests.conftest.SMALL` once (the
`built_warehouse` fixture) and `test_golden.py` compares each table with its file here, row by
row, floats to `RTOL` relative (`ATOL` near zero). A change of any figure is then a deliberate
regeneration that shows in review:

    .venv/bin/python -m eqs_pipeline_tests.golden

rebuilds the desk in a temporary folder and rewrites the files. Columns that hold the time or
the id of the run (`VOLATILE`) are left out.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import duckdb
import polars as pl

HERE = Path(__file__).parent
# Sums that Polars splits across threads differ in their last bits with the thread count (an
# order's interval VWAP slippage by 3e-12 relative between 1 and 16 threads), so floats compare
# to 1e-9 relative; a changed formula moves them by far more.
RTOL = 1e-9
ATOL = 1e-12
VOLATILE = {"emitted_at", "run_id", "inputs_fingerprint"}  # times of runs, files
JSON = {"payload"}  # JSON text of the event exports: compared value by value


def tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The warehouse's tables and views: a table kept in the lake is a view over it."""
    rows = con.execute(
        "select schema_name || '.' || table_name from duckdb_tables() union all "
        "select schema_name || '.' || view_name from duckdb_views() where not internal "
        "order by 1"
    ).fetchall()
    return [name for (name,) in rows]


def read(con: duckdb.DuckDBPyConnection, table: str) -> pl.DataFrame:
    """The table without its volatile columns, in a canonical row order (by every column but
    lists and structs)."""
    frame = con.execute(f"select * from {table}").pl()  # names from duckdb_tables()
    frame = frame.drop([c for c in frame.columns if c in VOLATILE])
    keys = [c for c, t in frame.schema.items() if not t.is_nested()]
    return frame.sort(keys, nulls_last=True, maintain_order=True)


def path(table: str) -> Path:
    return HERE / f"{table}.parquet"


def write(warehouse: Path) -> list[Path]:
    """Rewrite the golden files from a built warehouse."""
    for old in HERE.glob("*.parquet"):
        old.unlink()
    out = []
    with duckdb.connect(str(warehouse), read_only=True) as con:
        for table in tables(con):
            read(con, table).write_parquet(path(table), compression="zstd")
            out.append(path(table))
    return out


def differences(warehouse: Path) -> list[str]:
    """What differs between a built warehouse and the golden files (empty: nothing)."""
    problems = []
    with duckdb.connect(str(warehouse), read_only=True) as con:
        built = tables(con)
        golden = sorted(p.stem for p in HERE.glob("*.parquet"))
        if built != golden:
            problems.append(f"tables: built {built}, golden {golden}")
        for table in sorted(set(built) & set(golden)):
            problems += _table_differences(table, read(con, table), pl.read_parquet(path(table)))
    return problems


def between(warehouse: Path, expected: Path) -> list[str]:
    """What differs between two built warehouses, compared as `differences` compares one with
    the golden files (empty: nothing)."""
    problems = []
    with (
        duckdb.connect(str(warehouse), read_only=True) as con,
        duckdb.connect(str(expected), read_only=True) as want,
    ):
        built, other = tables(con), tables(want)
        if built != other:
            problems.append(f"tables: {built}, expected {other}")
        for table in sorted(set(built) & set(other)):
            problems += _table_differences(table, read(con, table), read(want, table))
    return problems


def _table_differences(table: str, got: pl.DataFrame, want: pl.DataFrame) -> list[str]:
    if got.schema != want.schema:
        return [f"{table}: schema {dict(got.schema)} != golden {dict(want.schema)}"]
    if got.height != want.height:
        return [f"{table}: {got.height} rows, golden {want.height}"]
    problems = []
    for name, dtype in got.schema.items():
        a, b = got.get_column(name), want.get_column(name)
        if dtype.is_float():
            bad = _float_mismatches(a, b)
        elif name in JSON:
            same = [_same_json(x, y) for x, y in zip(a, b, strict=True)]
            bad = pl.Series(same).not_().arg_true()
        else:
            bad = a.ne_missing(b).arg_true()
        if bad.len():
            i = bad[0]
            problems.append(
                f"{table}.{name}: {bad.len()} row(s) differ, first row {i}: {a[i]!r} != {b[i]!r}"
            )
    return problems


def _close(x: float, y: float) -> bool:
    return x == y or abs(x - y) <= ATOL + RTOL * abs(y) or (x != x and y != y)


def _same_value(x: object, y: object) -> bool:
    if isinstance(x, dict) and isinstance(y, dict):
        return x.keys() == y.keys() and all(_same_value(x[k], y[k]) for k in x)
    if isinstance(x, list) and isinstance(y, list):
        return len(x) == len(y) and all(_same_value(u, v) for u, v in zip(x, y, strict=True))
    if isinstance(x, float) or isinstance(y, float):
        return isinstance(x, int | float) and isinstance(y, int | float) and _close(x, y)
    return x == y


def _same_json(x: str | None, y: str | None) -> bool:
    if x is None or y is None:
        return x is y
    return _same_value(json.loads(x), json.loads(y))


def _float_mismatches(a: pl.Series, b: pl.Series) -> pl.Series:
    both = pl.DataFrame({"a": a, "b": b})
    close = ((pl.col("a") - pl.col("b")).abs() <= ATOL + RTOL * pl.col("b").abs()) | (
        pl.col("a") == pl.col("b")
    )  # the same infinity
    nan_same = pl.col("a").is_nan() & pl.col("b").is_nan()
    null_same = pl.col("a").is_null() & pl.col("b").is_null()
    ok = close.fill_null(False) | nan_same.fill_null(False) | null_same
    return both.select(~ok).to_series().arg_true()


def main() -> None:
    from eqs_pipeline.runtime.runner import run_pipeline
    from eqs_pipeline_tests.conftest import simulate_small

    with tempfile.TemporaryDirectory() as tmp:
        landing = simulate_small(Path(tmp) / "landing")
        run_pipeline(landing, Path(tmp) / "warehouse.duckdb")
        for p in write(Path(tmp) / "warehouse.duckdb"):
            print(p.relative_to(HERE.parents[1]))


if __name__ == "__main__":
    sys.exit(main())
