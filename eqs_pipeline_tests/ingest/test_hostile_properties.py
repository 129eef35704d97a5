"""Ingestion against hostile landings (hypothesis): whatever a desk lands, nothing is lost and
nothing non-finite reaches the metrics.

Each example starts from one small, valid simulated trade date (every contract table, the
instruments included) and makes it hostile: values of its rows replaced in place (so the
cross-table rules cascade: a broken order takes its child orders and fills with it), and extra
files appended to the table folders, in CSV, JSON Lines or Parquet, with copies of its rows
(identical duplicates, conflicting keys, fresh keys) carrying hostile values: text in numeric
columns, zero, negatives, 1e-300, 1e300, 1e308, NaN and infinities as text (and as Parquet
floats), huge integers; control characters, NUL, RTL overrides, newlines inside quoted CSV
fields, very long strings, markup, SQL-looking text; timestamps far in the past or future, off
the folder's trade date, unparsable or in other offsets; optional columns left out, empty files;
and a symbol landed in absurd units, every price and size of it in every table scaled alike
(`Units`), which no bound relative to the symbol's own rows can tell. The landing is then ingested (`read_table`, `validate_instruments`, `validate_partition`) and the
date is scored with the pure functions the `quality` and `venue_daily` assets call
(`quality.day.score_day`, `venues.daily.venue_day`).

Properties:
- conservation: for every table, the rows written = staged + quarantined + collapsed
  duplicates, by the `IngestResult` counts (per file), by the frames themselves, and by
  `conservation_report` against `count_landed_rows`; every quarantined row has a reason;
- no exception but the documented file-level `LandingError`; a file with one of the documented
  file-level faults (a required column missing, a naive timestamp, a ragged CSV row, ...) is
  one, and a hostile file without such a fault is not one;
- no NaN or infinity in any float column of the staged tables, the fill and order quality
  frames (the quality score included) and the venue daily frames.

The hostile landings found so far to break a property are kept as plain cases (`FOUND`), shrunk
to one change each. The default profile (eqs_pipeline_tests/conftest.py) runs a dozen
reproducible examples per property; `make test-deep` runs many more (HYPOTHESIS_PROFILE=deep).
"""

from __future__ import annotations

import csv
import json
import math
import tempfile
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from functools import cache
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import currently_in_test_context, event, given
from hypothesis import strategies as st

from eqs_pipeline.core.contract import CONTRACT, DATED_TABLES, TS, Column
from eqs_pipeline.core.ranges import in_memory
from eqs_pipeline.core.settings import QualitySettings
from eqs_pipeline.ingest import (
    IngestResult,
    LandingError,
    conservation_report,
    count_landed_rows,
    discover_trade_dates,
    read_table,
    validate_instruments,
    validate_partition,
)
from eqs_pipeline.ingest.rules import PARTITION_TABLES
from eqs_pipeline.quality.day import score_day
from eqs_pipeline.simulate import SimulationConfig, simulate
from eqs_pipeline.venues.daily import venue_day
from eqs_pipeline.venues.settings import VenueSettings

Row = dict[str, Any]
TABLES = tuple(CONTRACT)  # instruments first, then the dated tables
FORMATS = ("csv", "jsonl", "parquet")
# A small valid day: 3 symbols, 6 parent orders with their child orders and fills, quotes
# before every fill and the tape (a few hundred rows in all).
BASE = SimulationConfig(
    days=1,
    symbols=3,
    orders_per_day=6,
    seed=11,
    min_quotes_per_symbol=15,
    min_trades_per_symbol=8,
    max_children_per_order=4,
    start_date=date(2026, 11, 2),  # the hostile timestamp texts below name this date
)


@dataclass(frozen=True)
class BaseDay:
    trade_date: date
    rows: dict[str, list[Row]]  # table -> its valid rows, contract columns only


@cache
def base_day() -> BaseDay:
    data = simulate(BASE)
    (day,) = data.trade_dates
    rows = {"instruments": data.instruments.select(CONTRACT["instruments"].names).to_dicts()}
    for table in DATED_TABLES:
        rows[table] = data.day(table, day).select(CONTRACT[table].names).to_dicts()
    return BaseDay(day, rows)


# --- hostile values -----------------------------------------------------------------------

HUGE = 10**30
TEXTS = [
    "",
    "   ",
    "\x00",
    "A\x00B",
    "\u202eLPAA",  # RTL override: prints as AAPL reversed
    "AAPL\u200b",  # zero-width space
    "\ufeffAAPL",  # byte-order mark
    "line\nbreak",
    "cr\rlf\r\n",
    "tab\there",
    "\x1b[31mred\x1b[0m",
    "\x85next-line\u2028separator",
    "[/bold]",
    "[bold red]x[/]",
    "<img src=x onerror=alert(1)>",
    "<script>alert(1)</script>",
    "'; DROP TABLE staging.orders; --",
    "Robert'); DELETE FROM quarantine;--",
    "=cmd|' /C calc'!A0",
    '"quoted, with comma"',
    "null",
    "None",
    "NaN",
    "\U0001f4a9",
    "Ä" * 129,
    "X" * 5_000,
]
NUMBER_TEXTS = [
    "nan",
    "NaN",
    "-nan",
    "inf",
    "-inf",
    "Infinity",
    "+Infinity",
    "1e309",
    "-1e309",
    "1e-400",
    "1,5",
    "1_000",
    "0x1A",
    " 12 ",
    "١٢",
    "12abc",
    "true",
    "1e300",
    "1e308",
    "1.7976931348623157e308",
    "5e-324",
    str(HUGE),
    "-0",
]
NUMBERS = [
    0,
    0.0,
    -0.0,
    -1,
    -1e-300,
    1e-300,
    5e-324,
    1e-12,
    1e300,
    1e308,
    1.7976931348623157e308,
    -1e308,
    2**53 + 1,
    2**63,
    -(2**63) - 1,
    HUGE,
    True,
    0.5,
]
NON_FINITE = [math.nan, math.inf, -math.inf]
NESTED = [{"a": 1}, [1, 2], []]
TIMESTAMP_TEXTS = [
    "soon",
    "2026-13-45T99:99:99Z",
    "2026-02-30T10:00:00Z",
    "2026-11-02T24:00:00Z",
    "2026-11-02T14:30:00+25:00",
    "2026-11-02T14:30:00Z trailing",
    "0000-00-00T00:00:00Z",
    "+10000-01-01T00:00:00Z",
    "1792679400",
    "2026-11-02T14:30:00.123456789Z",
    "2026-11-02t14:30:00z",
]
FAR_INSTANTS = [
    datetime(1, 1, 1, tzinfo=UTC),
    datetime(1677, 9, 21, 0, 12, 44, tzinfo=UTC),
    datetime(1970, 1, 1, tzinfo=UTC),
    datetime(2262, 4, 11, 23, 47, 17, tzinfo=UTC),
    datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
]
OFFSETS = [timedelta(hours=h, minutes=m) for h, m in ((-12, 0), (-5, 0), (5, 30), (5, 45), (14, 0))]
# Time zones of a Parquet timestamp column: any zone is read as the UTC instant it stores.
PARQUET_ZONES = ("UTC", "America/New_York", "Asia/Kathmandu", "+05:30", "Z")


def texts() -> st.SearchStrategy[Any]:
    return st.sampled_from(TEXTS) | st.text(max_size=12)


def numbers() -> st.SearchStrategy[Any]:
    return (
        st.sampled_from(NUMBERS)
        | st.sampled_from(NUMBER_TEXTS)
        | st.sampled_from(NON_FINITE)
        | st.floats(width=64)
        | st.integers(min_value=-(2**70), max_value=2**70)
    )


@st.composite
def instants(draw, like: datetime | None) -> Any:
    """A hostile timestamp near `like` (the value it replaces) or anywhere."""
    if like is None:
        like = datetime.combine(base_day().trade_date, time(15), UTC)
    shift = draw(
        st.sampled_from(
            [
                timedelta(days=1),
                timedelta(days=-1),
                timedelta(hours=-12),
                timedelta(hours=10),
                timedelta(days=-366),
                timedelta(microseconds=1),
                timedelta(microseconds=-1),
            ]
        )
    )
    kind = draw(st.sampled_from(["far", "off_date", "offset", "text", "any"]))
    if kind == "far":
        return draw(st.sampled_from(FAR_INSTANTS))
    if kind == "off_date":
        return like + shift
    if kind == "offset":  # the same instant, or a shifted one, as text in another offset
        offset = timezone(draw(st.sampled_from(OFFSETS)))
        moved = like + draw(st.sampled_from([timedelta(0), shift]))
        return moved.astimezone(offset).isoformat()
    if kind == "text":
        return draw(st.sampled_from(TIMESTAMP_TEXTS))
    return draw(st.datetimes(timezones=st.just(UTC)))


def hostile_value(draw, column: Column, like: Any) -> Any:
    """A hostile value for `column`, often of the column's own kind (so it can be staged and
    reach the metrics), sometimes of any kind."""
    own = draw(st.booleans())
    if column.dtype == TS and own:
        return draw(instants(like))
    if column.dtype in (pl.Float64, pl.Int64) and own:
        return draw(numbers())
    if column.name == "market" and own:  # a real market: the trade date on another clock
        return draw(st.sampled_from(["JP", "AU", "XHKG", "GB", "XNAS", "ZZ"]))
    if column.allowed and own:
        code = draw(st.sampled_from(column.allowed))
        return draw(st.sampled_from([code.lower(), f" {code} ", f"{code}\u200b", code + "X"]))
    return draw(
        st.none()
        | texts()
        | st.sampled_from(NUMBERS)
        | st.sampled_from(NUMBER_TEXTS)
        | st.sampled_from(NESTED)
        | st.sampled_from(TIMESTAMP_TEXTS)
    )


# --- the plan of one hostile landing -------------------------------------------------------


@dataclass(frozen=True)
class Change:
    row: int  # index into the table's base rows
    column: str
    value: Any


@dataclass(frozen=True)
class ExtraRow:
    of: int  # the base row it copies (after the in-place changes)
    key: str  # "same" (an identical duplicate unless changed: a conflict) or "fresh"
    changes: tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class ExtraFile:
    name: str
    fmt: str
    rows: tuple[ExtraRow, ...]
    dropped: tuple[str, ...]  # optional columns the file leaves out
    zone: str  # Parquet: the time zone of its timestamp columns
    ascii_json: bool  # JSON Lines: escape non-ASCII (else raw UTF-8, U+2028 and NEL included)


@dataclass(frozen=True)
class TablePlan:
    fmt: str  # format of the base file
    changes: tuple[Change, ...]
    extra: tuple[ExtraFile, ...]


@st.composite
def table_plans(draw, table: str) -> TablePlan:
    contract = CONTRACT[table]
    base = base_day().rows[table]
    n = len(base)
    columns = st.sampled_from(contract.columns)

    def changes_of(row: Row, at_most: int) -> tuple[tuple[str, Any], ...]:
        chosen = draw(st.lists(columns, max_size=at_most, unique_by=lambda c: c.name))
        return tuple((c.name, hostile_value(draw, c, row.get(c.name))) for c in chosen)

    changes = []
    for _ in range(draw(st.integers(0, 3))):
        i = draw(st.integers(0, n - 1))
        changes += [Change(i, name, value) for name, value in changes_of(base[i], 2)]
    optional = [c.name for c in contract.columns if not c.required]
    extra = []
    for k in range(draw(st.integers(0, 2))):
        rows = []
        for _ in range(draw(st.integers(0, 4))):
            i = draw(st.integers(0, n - 1))
            key = draw(st.sampled_from(["same", "fresh"])) if contract.key else "same"
            rows.append(ExtraRow(i, key, changes_of(base[i], 3)))
        extra.append(
            ExtraFile(
                name=f"{draw(st.sampled_from(['a', 'z']))}-hostile-{k}",
                fmt=draw(st.sampled_from(FORMATS)),
                rows=tuple(rows),
                dropped=tuple(draw(st.lists(st.sampled_from(optional), unique=True)))
                if optional
                else (),
                zone=draw(st.sampled_from(PARQUET_ZONES)),
                ascii_json=draw(st.booleans()),
            )
        )
    return TablePlan(draw(st.sampled_from(FORMATS)), tuple(changes), tuple(extra))


@st.composite
def landings(draw) -> dict[str, TablePlan]:
    return {table: draw(table_plans(table)) for table in TABLES}


@dataclass(frozen=True)
class Units:
    """Every price and every size of one symbol, in every table (fees follow), multiplied by
    `price` and `size`: a desk that lands a symbol in absurd units, consistently, so that no
    bound relative to the symbol's own instrument row or quotes can tell."""

    symbol: int  # index into the base instruments
    price: float
    size: float


PRICE_COLUMNS = frozenset({"tick_size", "limit_price", "price", "bid_px", "ask_px"})
SIZE_COLUMNS = frozenset({"adv_shares", "order_qty", "qty", "bid_sz", "ask_sz", "size"})
UNIT_FACTORS = (1.0, 1e-300, 1e-12, 1e12, 1e150, 1e300)


def units() -> st.SearchStrategy[tuple[Units, ...]]:
    factors = st.sampled_from(UNIT_FACTORS)
    symbols = st.integers(0, len(base_day().rows["instruments"]) - 1)
    return st.lists(st.builds(Units, symbols, factors, factors), max_size=2).map(tuple)


def in_units(rows: list[Row], scales: tuple[Units, ...]) -> None:
    """Apply `scales` to `rows` (of one table), in place."""
    base = base_day().rows
    order_symbol = {o["order_id"]: o["symbol"] for o in base["orders"]}
    for scale in scales:
        symbol = base["instruments"][scale.symbol]["symbol"]
        factors = {
            **dict.fromkeys(PRICE_COLUMNS, scale.price),
            **dict.fromkeys(SIZE_COLUMNS, scale.size),
            "fee": scale.price * scale.size,  # money: price x size
        }
        for row in rows:
            of = row["symbol"] if "symbol" in row else order_symbol.get(row["order_id"])
            if of != symbol:
                continue
            for c in factors.keys() & row.keys():
                if isinstance(row[c], float):
                    row[c] *= factors[c]


def planned_rows(
    table: str, plan: TablePlan, scales: tuple[Units, ...] = ()
) -> tuple[list[Row], list[tuple[ExtraFile, list[Row]]]]:
    """The base rows in the units of `scales` with the plan's changes, and each extra file
    with its rows."""
    contract = CONTRACT[table]
    rows = [dict(r) for r in base_day().rows[table]]
    in_units(rows, scales)
    for change in plan.changes:
        rows[change.row][change.column] = change.value
    files = []
    fresh = 0
    for extra in plan.extra:
        out = []
        for spec in extra.rows:
            row = dict(rows[spec.of])
            if spec.key == "fresh":
                for k in contract.key:
                    fresh += 1
                    row[k] = f"HOSTILE-{k}-{fresh}"
            row.update(spec.changes)
            out.append({c: v for c, v in row.items() if c not in extra.dropped})
        files.append((extra, out))
    return rows, files


# --- writing files -------------------------------------------------------------------------


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)  # floats: repr, 'nan' and 'inf' included


def write_csv(path: Path, rows: list[Row], columns: list[str]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        writer.writerows([_as_text(row.get(c)) for c in columns] for row in rows)


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return _as_text(value)  # JSON has no NaN: a desk writes it as text
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def write_jsonl(path: Path, rows: list[Row], ascii_json: bool = True) -> None:
    lines = [
        json.dumps({c: _json_value(v) for c, v in row.items()}, ensure_ascii=ascii_json) + "\n"
        for row in rows
    ]
    path.write_text("".join(lines), encoding="utf-8")


def _arrow_column(values: list[Any], zone: str) -> pa.Array:
    """The values as one Arrow column: timestamps of `zone`, numbers, or else text."""
    present = [v for v in values if v is not None]
    if not present:
        return pa.nulls(len(values), pa.string())
    if all(isinstance(v, datetime) for v in present):
        return pa.array(values, pa.timestamp("us", "UTC")).cast(pa.timestamp("us", zone))
    if all(isinstance(v, bool) for v in present):
        return pa.array(values, pa.bool_())
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in present)
    if numeric and all(isinstance(v, int) and -(2**63) <= v < 2**63 for v in present):
        return pa.array(values, pa.int64())
    if numeric:  # floats, or integers some of which are floats or beyond Int64
        return pa.array([None if v is None else float(v) for v in values], pa.float64())
    return pa.array([None if v is None else _as_text(v) for v in values], pa.string())


def write_parquet(path: Path, rows: list[Row], columns: list[str], zone: str = "UTC") -> None:
    table = pa.table({c: _arrow_column([row.get(c) for row in rows], zone) for c in columns})
    pq.write_table(table, path)


def write_file(
    path: Path, fmt: str, rows: list[Row], columns: list[str], zone: str, ascii_json: bool
) -> None:
    if fmt == "csv":
        write_csv(path, rows, columns)
    elif fmt == "jsonl":
        write_jsonl(path, rows, ascii_json)
    else:
        write_parquet(path, rows, columns, zone)


def folder(landing: Path, table: str, day: date) -> Path:
    path = landing / table
    if CONTRACT[table].dated:
        path = path / f"date={day.isoformat()}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_landing(
    landing: Path, plans: dict[str, TablePlan], scales: tuple[Units, ...] = ()
) -> dict[str, int]:
    """Write every table's base file and extra files; returns the rows written per table."""
    day = base_day().trade_date
    written = {}
    for table, plan in plans.items():
        names = CONTRACT[table].names
        where = folder(landing, table, day)
        rows, files = planned_rows(table, plan, scales)
        write_file(where / f"part-0.{plan.fmt}", plan.fmt, rows, names, "UTC", True)
        written[table] = len(rows)
        for extra, extra_rows in files:
            columns = [c for c in names if c not in extra.dropped]
            path = where / f"{extra.name}.{extra.fmt}"
            write_file(path, extra.fmt, extra_rows, columns, extra.zone, extra.ascii_json)
            written[table] += len(extra_rows)
    return written


# --- ingestion, scoring and the properties -------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    instruments: IngestResult
    partition: IngestResult
    frames: dict[str, pl.DataFrame]  # name -> a frame whose floats must all be finite


def ingest(landing: Path, day: date) -> tuple[IngestResult, IngestResult]:
    """What the staging assets do: the trade dates, the instruments, then the partition."""
    assert discover_trade_dates(landing) == [day]
    instruments = validate_instruments(read_table(landing, "instruments", None), landing=landing)
    raw = {t: read_table(landing, t, day) for t in PARTITION_TABLES}
    partition = validate_partition(raw, day, instruments.staged["instruments"], landing=landing)
    return instruments, partition


def ingest_and_score(landing: Path, day: date) -> Outcome:
    """Ingest, then score the date with the functions the quality and venue_daily assets call."""
    instruments, partition = ingest(landing, day)
    staged = dict(partition.staged)
    scored = score_day(in_memory(staged), instruments.staged["instruments"])
    chunk_fills = QualitySettings().chunk_fills
    inputs = {"fill_quality": scored.fills, "order_quality": scored.orders, **staged}
    venues = venue_day(in_memory(inputs), scored.fills.height, VenueSettings(), chunk_fills)
    frames = {
        "staging.instruments": instruments.staged["instruments"],
        **{f"staging.{t}": f for t, f in staged.items()},
        "quality.fill_quality": scored.fills,
        "quality.order_quality": scored.orders,
        "venue.venue_daily": venues.sums.daily(),
        "venue.venue_daily_buckets": venues.sums.buckets(),
    }
    return Outcome(instruments, partition, frames)


def assert_conserved(
    result: IngestResult, written: dict[str, int], landing: Path, day: date | None
) -> None:
    """landed = staged + quarantined + collapsed, per table and per file, three ways."""
    counts = result.counts
    per_file = counts.filter(
        pl.col("landed_rows")
        != pl.col("staged_rows") + pl.col("quarantined_rows") + pl.col("collapsed_duplicates")
    )
    assert per_file.height == 0, f"per-file counts do not add up:\n{per_file}"
    for table, n_staged in ((t, f.height) for t, f in result.staged.items()):
        mine = counts.filter(pl.col("source_table") == table)
        quarantined = result.quarantine.filter(pl.col("source_table") == table).height
        collapsed = int(mine["collapsed_duplicates"].sum())
        read = int(mine["landed_rows"].sum())
        assert read == written[table], f"{table}: {written[table]} rows written, {read} read"
        assert int(mine["staged_rows"].sum()) == n_staged, f"{table} staged:\n{mine}"
        assert int(mine["quarantined_rows"].sum()) == quarantined, f"{table} quarantined:\n{mine}"
        assert written[table] == n_staged + quarantined + collapsed, (
            f"{table}: {written[table]} rows written, {n_staged} staged + {quarantined} "
            f"quarantined + {collapsed} collapsed"
        )
    landed = {t: count_landed_rows(landing, t, day) for t in result.staged}
    mine = {t: written[t] for t in result.staged}
    assert landed == mine, f"count_landed_rows {landed}, rows written {mine}"
    report = conservation_report(result, landed, day)
    assert report["holds"].all(), f"conservation does not hold:\n{report}"
    reasons = result.quarantine.get_column("reasons")
    no_reason = result.quarantine.filter(reasons.is_null() | (reasons.list.len() == 0))
    assert no_reason.height == 0, f"quarantined rows without a reason:\n{no_reason}"


def non_finite(frames: dict[str, pl.DataFrame]) -> dict[str, Row]:
    """Per frame and float column with a NaN or an infinity: how many, and the first such row."""
    found = {}
    for name, frame in frames.items():
        floats = [c for c, t in frame.schema.items() if t.is_float()]
        if not floats or frame.height == 0:
            continue
        counts = frame.select((~pl.col(floats).is_finite()).sum()).row(0, named=True)
        for column, n in counts.items():
            if n:
                first = frame.filter(~pl.col(column).is_finite()).row(0, named=True)
                found[f"{name}.{column}"] = {"rows": n, "first": first}
    return found


def note(what: str) -> None:
    """A Hypothesis event (`--hypothesis-show-statistics`), when run by Hypothesis."""
    if currently_in_test_context():
        event(what)


def check_landing(
    plans: dict[str, TablePlan], scales: tuple[Units, ...] = (), broken: tuple[Fault, ...] = ()
) -> None:
    """Write the landing, ingest and score it, and check every property."""
    day = base_day().trade_date
    fatal = {FAULTS[f.kind] for f in broken}
    with tempfile.TemporaryDirectory(prefix="eqs-hostile-") as tmp:
        landing = Path(tmp) / "landing"
        written = write_landing(landing, plans, scales)
        for n, fault in enumerate(broken):
            written[fault.table] += write_fault(landing, fault, n)
            note(f"fault: {fault.kind}")
        try:
            outcome = ingest_and_score(landing, day)
        except LandingError as exc:
            # Only a file-level fault stops a table and date: a hostile value is a row problem.
            assert fatal & {True, None}, f"LandingError without a file-level fault: {exc}"
            assert str(exc)
            note("LandingError")
            return
        assert True not in fatal, f"no LandingError for {broken}"
        assert_conserved(outcome.instruments, written, landing, None)
        assert_conserved(outcome.partition, written, landing, day)
        orders = outcome.frames["quality.order_quality"]
        note(f"fills scored: {outcome.frames['quality.fill_quality'].height > 0}")
        note(f"orders graded: {orders.get_column('quality_score').is_not_null().any()}")
        note(f"rows quarantined: {outcome.partition.quarantine.height > 0}")
        bad = non_finite(outcome.frames)
        detail = json.dumps(bad, default=str, indent=1)[:4000]
        assert not bad, f"non-finite values in {sorted(bad)}: {detail}"
        scores = orders.get_column("quality_score").drop_nulls()
        assert scores.is_between(0, 100).all(), scores


@given(plans=landings(), scales=units())
def test_hostile_rows_are_conserved_and_never_reach_the_metrics_non_finite(
    plans: dict[str, TablePlan], scales: tuple[Units, ...]
) -> None:
    check_landing(plans, scales)


# --- file-level faults ---------------------------------------------------------------------


@dataclass(frozen=True)
class Fault:
    """One hostile file (or folder) added to a valid landing."""

    table: str
    kind: str


# kind -> whether ingestion must stop with a LandingError (docs/INGESTION.md, "File-level
# errors" and "Layout"): True, must not: False, either (no documented outcome): None.
FAULTS: dict[str, bool | None] = {
    "missing_required_column": True,
    "header_only_without_a_required_column": True,
    "naive_text_timestamp": True,
    "naive_parquet_timestamp": True,
    "csv_row_too_long": True,
    "csv_row_too_short": True,
    "csv_unclosed_quote": True,
    "csv_duplicate_header": True,
    "csv_not_utf8": True,
    "json_line_not_an_object": True,
    "json_line_broken": True,
    "json_bare_nan": True,
    "parquet_garbage": True,
    "parquet_nested_value": True,
    "parquet_no_columns": True,
    "stray_file": True,
    "folder_not_a_table": True,
    "folder_not_a_date": True,
    # Polars would read one header line and lose the rows: refused, naming the line ends.
    "csv_old_mac_line_ends": True,
    # White space only: no header and no rows, like an empty file.
    "csv_white_space_only": False,
    "csv_empty": False,
    "csv_blank_lines": False,
    "csv_header_only": False,
    "csv_separators_only": False,
    "csv_crlf_and_bom": False,
    "jsonl_empty": False,
    "jsonl_blank_lines": False,
    "parquet_no_rows": False,
    "hidden_files": False,
}
# Faults that need a timestamp column (the instruments have none).
TIMESTAMP_FAULTS = ("naive_text_timestamp", "naive_parquet_timestamp")
# Faults of the landing's layout, not of one table's files.
LAYOUT_FAULTS = ("folder_not_a_table",)


@st.composite
def faults(draw) -> tuple[Fault, ...]:
    def fault(kind: str) -> Fault:
        tables = [
            t
            for t in TABLES
            if not (kind in TIMESTAMP_FAULTS and not CONTRACT[t].timestamp_columns)
            and not (kind == "folder_not_a_date" and not CONTRACT[t].dated)
        ]
        return Fault(draw(st.sampled_from(tables)), kind)

    # One fault that may stop ingestion, or up to three that must not (a fatal one would hide
    # what the others do).
    fatal = [k for k, stops in FAULTS.items() if stops is not False]
    harmless = [k for k, stops in FAULTS.items() if stops is False]
    kinds = st.lists(st.sampled_from(fatal), min_size=1, max_size=1) | st.lists(
        st.sampled_from(harmless), min_size=1, max_size=3, unique=True
    )
    return tuple(fault(k) for k in draw(kinds))


def write_fault(landing: Path, fault: Fault, n: int) -> int:
    """Write the fault's file(s) as the `n`-th; returns the data rows it adds when it is not a
    file-level error (what `count_landed_rows` and the reader count)."""
    day = base_day().trade_date
    contract = CONTRACT[fault.table]
    where = folder(landing, fault.table, day)
    row = dict(base_day().rows[fault.table][0])
    names = contract.names
    name = f"fault-{n}"
    text = ",".join(names) + "\n"
    line = ",".join(_csv_field(row.get(c)) for c in names) + "\n"
    kind = fault.kind
    if kind == "missing_required_column":
        dropped = contract.required[n % len(contract.required)]
        fmt = FORMATS[n % len(FORMATS)]
        columns = [c for c in names if c != dropped]
        rows = [{c: row.get(c) for c in columns}]
        write_file(where / f"{name}.{fmt}", fmt, rows, columns, "UTC", True)
    elif kind == "header_only_without_a_required_column":
        (where / f"{name}.csv").write_text(",".join(names[1:]) + "\n")
    elif kind == "naive_text_timestamp":
        column = contract.timestamp_columns[0]
        naive = {**row, column: row[column].strftime("%Y-%m-%d %H:%M:%S")}
        write_csv(where / f"{name}.csv", [naive], names)
    elif kind == "naive_parquet_timestamp":
        column = contract.timestamp_columns[0]
        table = pa.table({c: _arrow_column([row.get(c)], "UTC") for c in names})
        i = table.schema.get_field_index(column)
        naive = table.column(i).cast(pa.timestamp("us"))
        pq.write_table(table.set_column(i, column, naive), where / f"{name}.parquet")
    elif kind == "csv_row_too_long":
        (where / f"{name}.csv").write_text(text + line + line.rstrip("\n") + ",extra\n")
    elif kind == "csv_row_too_short":
        (where / f"{name}.csv").write_text(text + line + line.rsplit(",", 1)[0] + "\n")
    elif kind == "csv_unclosed_quote":
        (where / f"{name}.csv").write_text(text + '"' + line)
    elif kind == "csv_duplicate_header":
        (where / f"{name}.csv").write_text(text.rstrip("\n") + f",{names[0]}\n")
    elif kind == "csv_not_utf8":
        (where / f"{name}.csv").write_bytes(text.encode() + b"\xff\xfe" + line.encode())
    elif kind == "json_line_not_an_object":
        write_jsonl(where / f"{name}.jsonl", [row])
        with (where / f"{name}.jsonl").open("a") as f:
            f.write("[1, 2]\n")
    elif kind == "json_line_broken":
        (where / f"{name}.jsonl").write_text('{"' + names[0] + '": \n')
    elif kind == "json_bare_nan":
        value = json.dumps({c: _json_value(v) for c, v in row.items()})
        numeric = next(c.name for c in contract.columns if c.dtype == pl.Float64)
        broken = json.loads(value)
        broken[numeric] = math.nan
        (where / f"{name}.jsonl").write_text(json.dumps(broken) + "\n")  # writes NaN bare
    elif kind == "parquet_garbage":
        (where / f"{name}.parquet").write_bytes(b"PAR1 this is not parquet \x00\xff" * 3)
    elif kind == "parquet_nested_value":
        table = pa.table({c: _arrow_column([row.get(c)], "UTC") for c in names})
        nested = pa.array([[1.0, 2.0]], pa.list_(pa.float64()))
        numeric = next(c.name for c in contract.columns if c.dtype == pl.Float64)
        i = table.schema.get_field_index(numeric)
        pq.write_table(table.set_column(i, numeric, nested), where / f"{name}.parquet")
    elif kind == "parquet_no_columns":
        pq.write_table(pa.table({}), where / f"{name}.parquet")
    elif kind == "stray_file":
        (where / f"{name}.txt").write_text("notes\n")
    elif kind == "folder_not_a_table":
        (landing / "execution" / f"date={day.isoformat()}").mkdir(parents=True, exist_ok=True)
    elif kind == "folder_not_a_date":
        (landing / fault.table / "date=2026-02-30").mkdir(parents=True, exist_ok=True)
    elif kind == "csv_old_mac_line_ends":
        (where / f"{name}.csv").write_text((text + line).replace("\n", "\r"), newline="")
        return 1  # one data row, its lines ended by CR alone
    elif kind == "csv_empty":
        (where / f"{name}.csv").write_bytes(b"")
    elif kind == "csv_blank_lines":
        (where / f"{name}.csv").write_text("\n\r\n\n", newline="")
    elif kind == "csv_white_space_only":
        (where / f"{name}.csv").write_text(" \n\t\n")
    elif kind == "csv_header_only":
        (where / f"{name}.csv").write_text(text)
    elif kind == "csv_separators_only":
        (where / f"{name}.csv").write_text(text + "," * (len(names) - 1) + "\n")
        return 1
    elif kind == "csv_crlf_and_bom":
        body = "\ufeff" + text + line + line + "\n"
        (where / f"{name}.csv").write_text(body.replace("\n", "\r\n"), newline="")
        return 2
    elif kind == "jsonl_empty":
        (where / f"{name}.jsonl").write_bytes(b"")
    elif kind == "jsonl_blank_lines":
        write_jsonl(where / f"{name}.jsonl", [row])
        with (where / f"{name}.jsonl").open("a") as f:
            f.write("\n   \n\n")
        return 1
    elif kind == "parquet_no_rows":
        empty = pa.table({c: _arrow_column([row.get(c)], "UTC") for c in names}).slice(0, 0)
        pq.write_table(empty, where / f"{name}.parquet")
    elif kind == "hidden_files":
        (where / "_SUCCESS").write_bytes(b"")
        (where / f".{name}.csv.swp").write_bytes(b"\x00\xff garbage")
        (where / f"_{name}.parquet").write_bytes(b"not parquet")
    else:
        raise AssertionError(f"unknown fault {kind}")
    return 0


def _csv_field(value: Any) -> str:
    text = _as_text(value)
    if any(ch in text for ch in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def clean_plans() -> st.SearchStrategy[dict[str, TablePlan]]:
    """The valid day as it is, each table in a format of its own."""
    plan = st.builds(TablePlan, st.sampled_from(FORMATS), st.just(()), st.just(()))
    return st.fixed_dictionaries(dict.fromkeys(TABLES, plan))


@given(plans=clean_plans(), broken=faults())
def test_hostile_files_fail_whole_or_are_conserved(
    plans: dict[str, TablePlan], broken: tuple[Fault, ...]
) -> None:
    check_landing(plans, (), broken)


CSV = TablePlan("csv", (), ())


def valid_day(**changed: TablePlan) -> dict[str, TablePlan]:
    """The valid day, every table as CSV, but the tables `changed`."""
    return {t: changed.get(t, CSV) for t in TABLES}


def one_change(table: str, column: str, value: Any) -> dict[str, TablePlan]:
    """The valid day with one value of the first row of `table` replaced."""
    return valid_day(**{table: TablePlan("csv", (Change(0, column, value),), ())})


# Hostile landings these tests have found to break a property, each shrunk to one change; plain
# cases, so that every profile runs them while the property tests go on exploring.
FOUND: dict[str, tuple[dict[str, TablePlan], tuple[Units, ...], tuple[Fault, ...]]] = {
    # Prices x 1e300 and sizes x 1e12 for one symbol: every bound relative to its instrument
    # row and its quotes holds, but price x size overflows (`quality.asof.prepare_trades`:
    # RuntimeWarning; NaN and infinite interval VWAP, implementation shortfall, quality score).
    "one_symbol_in_absurd_units": (valid_day(), (Units(0, price=1e300, size=1e12),), ()),
    # An instrument's ADV of 5e-324 shares: size_pct_adv and expected cost infinite, score NaN.
    "adv_of_5e-324_shares": (one_change("instruments", "adv_shares", 5e-324), (), ()),
    # A print in year 1: scoring raised ValueError (`quality.asof._timeline`, "span more than
    # 12 days").
    "print_in_year_1": (
        one_change("market_trades", "ts", datetime(1, 1, 1, tzinfo=UTC)),
        (),
        (),
    ),
    # A print at 1e304: price x size overflowed (`quality.asof.prepare_trades`).
    "print_at_1e304": (one_change("market_trades", "price", "1e304"), (), ()),
    # A CSV whose lines end in CR alone (classic Mac OS): Polars reads one header line and no
    # row when the last column is optional (orders, child orders, executions, the tape, the
    # instruments) while `count_landed_rows` counts its row: the row is silently dropped.
    "csv_with_cr_line_ends": (valid_day(), (), (Fault("orders", "csv_old_mac_line_ends"),)),
}


@pytest.mark.parametrize("case", list(FOUND))
def test_hostile_landings_found_so_far(case: str) -> None:
    check_landing(*FOUND[case])
