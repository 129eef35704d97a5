"""Reading one landed table and date into a frame of contract-typed columns plus provenance.

Every file is read whole (Parquet natively, CSV with every value as a string, JSON Lines as
JSON), checked for file-level problems, then coerced column by column to the contract types
with Polars expressions. A value that is present but cannot be coerced becomes null and the row
gets `bad_value:<column>` in `_reasons`; the validation rules decide later where the row goes.
File-level problems (unreadable file, missing required column, timestamps without a UTC offset)
raise `LandingError` and nothing of the table and date is returned.

The original text of a row is needed only if the row ends in quarantine. `original_rows`
re-reads just the files that hold quarantined rows and encodes just those rows, so a clean day
of tens of millions of quotes costs no JSON encoding (about 0.2 s and 100 bytes per thousand
rows otherwise).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path, PurePosixPath

import polars as pl

from eqs_pipeline.contract import CONTRACT, TS, TableContract
from eqs_pipeline.ingest import store
from eqs_pipeline.ingest.layout import LandingError, landed_files
from eqs_pipeline.lake import join

SOURCE_FILE = "_source_file"
SOURCE_ROW = "_source_row"
REASONS = "_reasons"
PROVENANCE_SCHEMA: dict[str, pl.DataType] = {
    SOURCE_FILE: pl.String(),
    SOURCE_ROW: pl.Int64(),
    REASONS: pl.List(pl.String()),
}

# ISO-8601 date and time, 'T' or space separator, optional seconds and fraction.
_ISO_DATETIME = r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?"
_NAIVE = rf"^{_ISO_DATETIME}$"
_READ_ERRORS = (OSError, ValueError, UnicodeDecodeError, pl.exceptions.PolarsError)


def raw_schema(table: str) -> dict[str, pl.DataType]:
    """The schema `read_table` returns for `table`: contract columns, then provenance columns."""
    return {**CONTRACT[table].polars_schema, **PROVENANCE_SCHEMA}


# A reader gets a file's path (local) or its bytes (object storage, one GET: see `store.source`)
# and opens it with `store.readable` for each read.
Source = str | bytes


def _read_csv(
    source: Source, contract: TableContract, where: str
) -> tuple[pl.DataFrame, pl.Series | None]:
    return pl.read_csv(store.readable(source), infer_schema=False), None


def _read_parquet(
    source: Source, contract: TableContract, where: str
) -> tuple[pl.DataFrame, pl.Series | None]:
    return pl.read_parquet(store.readable(source)), None


def _read_jsonl(
    source: Source, contract: TableContract, where: str
) -> tuple[pl.DataFrame, pl.Series | None]:
    """JSON Lines; contract values read as text; also returns the non-blank lines (the rows'
    original JSON)."""
    lines = pl.read_lines(store.readable(source)).to_series().str.strip_chars()
    lines = lines.filter(lines != "")
    if lines.len() == 0:
        return pl.DataFrame(schema=dict.fromkeys(contract.names, pl.String)), lines
    keys = pl.scan_ndjson(store.readable(source), infer_schema_length=None).collect_schema().names()
    present = {c: pl.String() for c in contract.names if c in keys}
    if not present:
        return pl.DataFrame(), lines
    df = pl.read_ndjson(store.readable(source), schema=present)
    if df.height != lines.len():
        raise LandingError(
            f"{where}: {lines.len()} non-blank lines but {df.height} JSON rows were parsed; "
            "write one JSON object per line"
        )
    return df, lines


def _encode_row(df: pl.DataFrame) -> pl.Expr:
    """All original columns of a row as a JSON object (types JSON lacks become strings)."""
    if not df.columns:
        return pl.lit(None, pl.String).alias("row_json")
    native = (pl.Boolean, pl.String, pl.Null, pl.List, pl.Struct, pl.Array, pl.Datetime, pl.Date)
    cols = [
        pl.col(name)
        if (dtype.is_numeric() and not dtype.is_decimal()) or isinstance(dtype, native)
        else pl.col(name).cast(pl.String, strict=False)
        for name, dtype in df.schema.items()
    ]
    return pl.struct(cols).struct.json_encode().alias("row_json")


_READERS = {".csv": _read_csv, ".parquet": _read_parquet, ".jsonl": _read_jsonl}


def _as_text(name: str, dtype: pl.DataType) -> pl.Expr:
    """The column as stripped text, empty text as null."""
    text = pl.col(name) if dtype == pl.String else pl.col(name).cast(pl.String, strict=False)
    text = text.str.strip_chars()
    return pl.when(text != "").then(text)


def _parse_timestamp(text: pl.Expr) -> pl.Expr:
    """ISO-8601 with 'Z' or a +hh:mm / +hhmm offset -> UTC microseconds; anything else null."""
    normal = (
        text.str.replace(r"^(\d{4}-\d{2}-\d{2}) ", "${1}T")
        .str.replace(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2})([Zz+-])", "${1}:00${2}")
        .str.replace(r"[Zz]$", "+00:00")
    )
    parsed = normal.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f%z", time_unit="us", strict=False)
    return parsed.dt.convert_time_zone("UTC")


def _check_timestamps(df: pl.DataFrame, contract: TableContract, where: str) -> None:
    """Naive timestamps are a file-level error: the instant they denote is unknown."""
    for name in contract.timestamp_columns:
        if name not in df.columns:
            continue
        dtype = df.schema[name]
        if isinstance(dtype, pl.Datetime) and dtype.time_zone is None:
            raise LandingError(
                f"{where}: column {name!r} is a timestamp without time zone; write it as a "
                "timestamp with time zone (UTC)"
            )
        if dtype == pl.String:
            naive = df.select(
                row=pl.int_range(1, pl.len() + 1), value=pl.col(name).str.strip_chars()
            ).filter(pl.col("value").str.contains(_NAIVE))
            if naive.height:
                row, value = naive.row(0)
                raise LandingError(
                    f"{where}: column {name!r} has {naive.height} timestamp(s) without a UTC "
                    f"offset (first: data row {row}, {value!r}); write ISO-8601 with 'Z' or "
                    "+hh:mm, e.g. 2024-01-02T14:30:00.123456Z"
                )


def _coerce_column(name: str, source: pl.DataType, target: pl.DataType, where: str) -> pl.Expr:
    if isinstance(source, pl.List | pl.Struct | pl.Array | pl.Object):
        raise LandingError(
            f"{where}: column {name!r} holds nested values ({source}); expected {target}"
        )
    if target == TS:
        if isinstance(source, pl.Datetime):
            return pl.col(name).dt.convert_time_zone("UTC").dt.cast_time_unit("us")
        return _parse_timestamp(_as_text(name, source))
    if target == pl.String:
        return _as_text(name, source)
    numeric_source = source.is_numeric() or source == pl.Null
    number = (
        pl.col(name).cast(pl.Float64)
        if numeric_source
        else _as_text(name, source).cast(pl.Float64, strict=False)
    )
    number = pl.when(number.is_finite()).then(number)
    if target == pl.Float64:
        return number
    if target == pl.Int64:
        return pl.when(number == number.floor()).then(number).cast(pl.Int64, strict=False)
    raise NotImplementedError(f"no coercion to {target} (column {name!r})")


def _coerce(df: pl.DataFrame, contract: TableContract, where: str) -> pl.DataFrame:
    """Contract columns in contract types plus `_reasons` (bad_value:<col> where coercion failed)."""
    missing = [c for c in contract.required if c not in df.columns]
    if missing:
        raise LandingError(
            f"{where}: required column(s) {missing} missing; the file has {df.columns}. "
            f"{contract.name} needs {contract.required}"
        )
    _check_timestamps(df, contract, where)
    coerced, bad = [], []
    for col in contract.columns:
        if col.name not in df.columns:
            coerced.append(pl.lit(None, col.dtype).alias(col.name))
            continue
        source = df.schema[col.name]
        value = _coerce_column(col.name, source, col.dtype, where).alias(col.name)
        coerced.append(value)
        if source == pl.String and col.dtype == pl.String:
            # The value is the stripped text itself: it cannot fail to coerce, and checking it
            # anyway stripped every string twice (a day of 200k fills: 54 ms -> 20 ms).
            continue
        present = (
            _as_text(col.name, source) if source == pl.String else pl.col(col.name)
        ).is_not_null()
        bad.append((present & value.is_null()).alias(f"bad_value:{col.name}"))
    flags = df.select(*coerced, *bad)
    bad_cols = [c for c in flags.columns[len(contract.columns) :] if flags[c].any()]
    if bad_cols:
        reasons = pl.concat_list(
            [pl.when(pl.col(c)).then(pl.lit(c)) for c in bad_cols]
        ).list.drop_nulls()
    else:
        reasons = pl.lit([], pl.List(pl.String))
    return flags.select(*contract.names, reasons.alias(REASONS))


def _read_raw(landing: str | Path, location: str, contract: TableContract):
    where = store.relative(location, landing)
    suffix = PurePosixPath(location).suffix.lower()
    try:
        return where, *_READERS[suffix](store.source(location), contract, where)
    except _READ_ERRORS as e:
        raise LandingError(
            f"{where}: cannot read it as {suffix.lstrip('.')} ({type(e).__name__}: {e})"
        ) from e


def _read_file(landing: str | Path, location: str, contract: TableContract) -> pl.DataFrame:
    where, df, _ = _read_raw(landing, location, contract)
    out = _coerce(df, contract, where)
    return out.with_columns(
        pl.lit(where, pl.String).alias(SOURCE_FILE),
        pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias(SOURCE_ROW),
    ).select(list(raw_schema(contract.name)))


def original_rows(landing: str | Path, table: str, rows: pl.DataFrame) -> pl.Series:
    """The original rows, as JSON text, of `rows` (`source_file`, `source_row`), in their order.

    Each file is re-read once and only the requested rows are encoded: every original column
    is kept, extra ones included; a JSON Lines row is its original line.
    """
    if rows.height == 0:
        return pl.Series("row_json", [], pl.String)
    contract = CONTRACT[table]
    order = rows.select("source_file", "source_row").with_row_index("_order")
    parts = []
    for (source_file,), wanted in order.group_by("source_file", maintain_order=True):
        _, df, lines = _read_raw(landing, join(landing, source_file), contract)
        index = wanted["source_row"] - 1
        encoded = (
            lines.gather(index)
            if lines is not None
            else df[index].select(_encode_row(df)).to_series()
        )
        parts.append(wanted.select("_order").with_columns(row_json=encoded))
    return pl.concat(parts).sort("_order")["row_json"]


def read_table(landing: str | Path, table: str, trade_date: date | None) -> pl.DataFrame:
    """All landed rows of one table and date, coerced to the contract, with provenance.

    Columns: the contract columns in contract types, `_source_file` (path relative to the
    landing directory), `_source_row` (1-based data row within its file) and `_reasons`
    (coercion problems as `bad_value:<column>`); `original_rows` gives a row's original text.
    A table or date that did not land gives zero rows.

    Raises `LandingError` naming the file (and column) for an unreadable file, a missing
    required column, a nested value in a contract column, or timestamps without time zone.
    """
    contract = CONTRACT[table]
    files = landed_files(landing, table, trade_date)
    frames = [_read_file(landing, f.location, contract) for f in files]
    if not frames:
        return pl.DataFrame(schema=raw_schema(table))
    return pl.concat(frames, how="vertical")
