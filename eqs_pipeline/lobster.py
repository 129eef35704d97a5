"""Import LOBSTER Nasdaq samples (message + order book files in a zip) as contract tables.

`read_lobster` parses one LOBSTER archive into its messages and its level-1 book, row-aligned
(book row i is the book after message i). `import_lobster` turns archives into landing files of
the data contract: `quotes` (the top of Nasdaq's book), `market_trades` (the executions) and
`instruments` (ADV and volatility estimated from the same day). docs/LOBSTER.md explains the
conversions and caveats.

- Time: LOBSTER's `time` is seconds after midnight, exchange local time (America/New_York), with
  up to nine decimals. It is parsed from its text (a float would round the nanoseconds), then
  truncated (floored) to the contract's microseconds and converted to a UTC instant.
- Prices: LOBSTER's integer dollars x 10000 become dollars. Empty book sides carry dummy prices
  (+-9999999999, size 0); they become null in the book and never reach `quotes`.
- Quotes: one row per microsecond at which the top of book changed, holding the book at the end
  of that microsecond, so that no two quotes of a symbol share a `ts` and the as-of rules of
  docs/METRICS.md never depend on the order of equal stamps.
"""

from __future__ import annotations

import io
import math
import re
import zipfile
import zlib
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import polars as pl

from eqs_pipeline.core.contract import INSTRUMENTS, MARKET_TRADES, QUOTES, TS

EXCHANGE_TZ = "America/New_York"
VENUE = "XNAS"
CURRENCY = "USD"
MARKET = "US"
TICK_SIZE = 0.01
PRICE_SCALE = 10_000
DUMMY_PRICE = 9_999_999_999
VOLATILITY_SAMPLING_S = 300
EXECUTION_TYPES = (4, 5)
HALT_TYPE = 7

MESSAGE_COLUMNS = ("time", "type", "order_id", "size", "price", "direction")
BOOK_COLUMNS = ("ask_px", "ask_sz", "bid_px", "bid_sz")
_NAME = re.compile(
    r"^(?P<symbol>[A-Z0-9.]+)_(?P<date>\d{4}-\d{2}-\d{2})_(?P<start>\d+)_(?P<end>\d+)"
    r"_(?P<kind>message|orderbook)_(?P<level>\d+)\.csv$"
)
_TIME = r"^\d{1,6}(\.\d{1,9})?$"


class LobsterError(ValueError):
    """A LOBSTER archive cannot be imported; the message names the file, row and what is wrong."""


@dataclass(frozen=True)
class LobsterDay:
    """One symbol-day of LOBSTER data.

    messages: seq (row number in the file, from 0), ts (UTC, microseconds), time_ns (exact
        nanoseconds after local midnight), type, order_id, size, price (dollars; null for
        trading-halt messages, whose price field is a code), direction (side of the resting
        order: -1 sell, +1 buy).
    book: seq, ts, ask_px, ask_sz, bid_px, bid_sz: the level-1 book after message seq, prices in
        dollars, a side null where LOBSTER marks it empty.
    session_start / session_end: the requested window of the file, UTC.
    """

    symbol: str
    trade_date: date
    messages: pl.DataFrame
    book: pl.DataFrame
    session_start: datetime
    session_end: datetime


def _members(zf: zipfile.ZipFile, zip_path: Path) -> tuple[str, str, re.Match[str]]:
    found: dict[str, tuple[str, re.Match[str]]] = {}
    for name in zf.namelist():
        match = _NAME.match(Path(name).name)
        if match:
            if match["kind"] in found:
                raise LobsterError(f"{zip_path}: more than one {match['kind']} file; one per zip")
            found[match["kind"]] = (name, match)
    missing = {"message", "orderbook"} - found.keys()
    if missing:
        raise LobsterError(
            f"{zip_path}: no {' or '.join(sorted(missing))} file named "
            "<SYM>_<YYYY-MM-DD>_<start>_<end>_<message|orderbook>_<level>.csv"
        )
    (msg_name, msg), (book_name, book) = found["message"], found["orderbook"]
    if (msg["symbol"], msg["date"]) != (book["symbol"], book["date"]):
        raise LobsterError(f"{zip_path}: {msg_name} and {book_name} are of different days")
    return msg_name, book_name, msg


def _member(zf: zipfile.ZipFile, zip_path: Path, name: str) -> bytes:
    try:
        return zf.read(name)
    except (OSError, RuntimeError, zipfile.BadZipFile, zlib.error) as exc:
        raise LobsterError(f"{zip_path}:{name}: cannot be read from the archive: {exc}") from exc


def _local_to_utc(trade_date: date, us_after_midnight: pl.Expr) -> pl.Expr:
    """Microseconds after local midnight of trade_date -> UTC instant (DST-aware)."""
    midnight = pl.lit(datetime.combine(trade_date, datetime.min.time())).cast(pl.Datetime("us"))
    return (
        (midnight + pl.duration(microseconds=us_after_midnight))
        .dt.replace_time_zone(EXCHANGE_TZ, non_existent="raise")
        .dt.convert_time_zone("UTC")
    )


def _read_csv(raw: bytes, where: str, columns: int | None) -> pl.DataFrame:
    """All fields as text, `seq` = row number from 0; LobsterError on an unreadable file.

    LOBSTER files have no header row; a header (or any other text) then fails the numeric checks
    with its row number. `columns`: the exact number of fields per row, None for a multiple of 4.
    """
    if not raw.strip():
        raise LobsterError(f"{where}: the file is empty")
    try:
        df = pl.read_csv(io.BytesIO(raw), has_header=False, infer_schema=False)
    except pl.exceptions.PolarsError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise LobsterError(f"{where}: not a readable CSV file: {first}") from exc
    if columns is not None and df.width != columns:
        raise LobsterError(f"{where}: expected {columns} columns, got {df.width}")
    if columns is None and (df.width < 4 or df.width % 4):
        raise LobsterError(f"{where}: expected 4 x levels columns, got {df.width}")
    return df.with_row_index("seq")


def _integers(df: pl.DataFrame, names: tuple[str, ...], where: str) -> pl.DataFrame:
    """Cast the named text columns to Int64, raising on the first empty or non-integer field."""
    for name in names:
        as_int = pl.col(name).cast(pl.Int64, strict=False)
        bad = df.filter(pl.col(name).is_null() | as_int.is_null())
        if bad.height:
            row, text = bad["seq"][0] + 1, bad[name][0]
            what = "is empty" if text is None else f"{text!r} is not an integer"
            column = df.columns.index(name)  # `seq` is column 0, so this counts from 1
            raise LobsterError(f"{where}: row {row}, column {column} ({name}): {what}")
        df = df.with_columns(as_int)
    return df


def _read_messages(raw: bytes, where: str, trade_date: date) -> pl.DataFrame:
    df = _read_csv(raw, where, len(MESSAGE_COLUMNS))
    df.columns = ["seq", *MESSAGE_COLUMNS]
    bad = df.filter(~pl.col("time").str.contains(_TIME).fill_null(False))
    if bad.height:
        raise LobsterError(
            f"{where}: row {bad['seq'][0] + 1}: time {bad['time'][0]!r} is not seconds after "
            "midnight with at most nine decimals"
        )
    df = _integers(df, MESSAGE_COLUMNS[1:], where)
    parts = pl.col("time").str.split(".")
    time_ns = parts.list.get(0).cast(pl.Int64) * 1_000_000_000 + parts.list.get(
        1, null_on_oob=True
    ).fill_null("0").str.pad_end(9, "0").cast(pl.Int64)
    df = df.with_columns(time_ns=time_ns)
    back = df.filter(pl.col("time_ns") < pl.col("time_ns").shift(1))
    if back.height:
        raise LobsterError(f"{where}: row {back['seq'][0] + 1}: time goes backwards")
    try:
        df = df.with_columns(
            ts=_local_to_utc(trade_date, pl.col("time_ns") // 1000),
            price=pl.when(pl.col("type") != HALT_TYPE).then(pl.col("price") / PRICE_SCALE),
        )
    except pl.exceptions.PolarsError as exc:
        raise LobsterError(f"{where}: a time is not a local time of {trade_date}: {exc}") from exc
    return df.select(
        pl.col("seq").cast(pl.Int64), "ts", "time_ns", "type", "order_id", "size", "price",
        "direction",
    )  # fmt: skip


def _read_book(raw: bytes, where: str) -> pl.DataFrame:
    df = _read_csv(raw, where, None).select("seq", pl.nth(range(1, 5)))
    df.columns = ["seq", *BOOK_COLUMNS]
    df = _integers(df, BOOK_COLUMNS, where)
    ask_ok = (pl.col("ask_px") > 0) & (pl.col("ask_px") < DUMMY_PRICE) & (pl.col("ask_sz") > 0)
    bid_ok = (pl.col("bid_px") > 0) & (pl.col("bid_px") < DUMMY_PRICE) & (pl.col("bid_sz") > 0)
    return df.select(
        ask_px=pl.when(ask_ok).then(pl.col("ask_px") / PRICE_SCALE),
        ask_sz=pl.when(ask_ok).then(pl.col("ask_sz").cast(pl.Float64)),
        bid_px=pl.when(bid_ok).then(pl.col("bid_px") / PRICE_SCALE),
        bid_sz=pl.when(bid_ok).then(pl.col("bid_sz").cast(pl.Float64)),
    )


def read_lobster(zip_path: Path) -> LobsterDay:
    """Parse one LOBSTER sample archive (message and order book file of one symbol-day)."""
    zip_path = Path(zip_path)
    try:
        zf = zipfile.ZipFile(zip_path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise LobsterError(f"{zip_path}: cannot open as a zip archive: {exc}") from exc
    with zf:
        msg_name, book_name, meta = _members(zf, zip_path)
        try:
            trade_date = date.fromisoformat(meta["date"])
        except ValueError as exc:
            raise LobsterError(f"{zip_path}:{msg_name}: {meta['date']} is not a date") from exc
        messages = _read_messages(
            _member(zf, zip_path, msg_name), f"{zip_path}:{msg_name}", trade_date
        )
        book = _read_book(_member(zf, zip_path, book_name), f"{zip_path}:{book_name}")
    if book.height != messages.height:
        raise LobsterError(
            f"{zip_path}: {msg_name} has {messages.height} rows but {book_name} has "
            f"{book.height}; row i of the book must be the book after message i"
        )
    book = pl.concat([messages.select("seq", "ts"), book], how="horizontal")
    try:
        window = pl.DataFrame(
            {"ms": [int(meta["start"]), int(meta["end"])]}, schema={"ms": pl.Int64}
        ).select(_local_to_utc(trade_date, pl.col("ms") * 1000))
    except (OverflowError, pl.exceptions.PolarsError) as exc:
        raise LobsterError(f"{zip_path}:{msg_name}: bad session window in the name: {exc}") from exc
    start, end = window.to_series().to_list()
    return LobsterDay(meta["symbol"], trade_date, messages, book, start, end)


def quotes_from_book(day: LobsterDay) -> pl.DataFrame:
    """Contract `quotes`: the top of book at the end of each microsecond in which it changed.

    Within a microsecond only the last book row counts (intermediate states last no time at
    this resolution and the as-of rules would pick the last anyway). States with an empty side
    or a crossed book (bid > ask) are dropped, so the last two-sided quote keeps prevailing.
    """
    values = list(BOOK_COLUMNS)
    changed = pl.any_horizontal(pl.col(c) != pl.col(c).shift(1) for c in values).fill_null(True)
    return (
        day.book.unique(subset="ts", keep="last", maintain_order=True)
        .drop_nulls(values)
        .filter(pl.col("bid_px") <= pl.col("ask_px"))
        .filter(changed)
        .with_columns(symbol=pl.lit(day.symbol))
        .select(pl.col(c.name).cast(c.dtype) for c in QUOTES.columns)
    )


def trades_from_messages(day: LobsterDay) -> pl.DataFrame:
    """Contract `market_trades`: one print per execution message (type 4 visible, 5 hidden)."""
    return (
        day.messages.filter(pl.col("type").is_in(EXECUTION_TYPES) & (pl.col("size") > 0))
        .with_columns(symbol=pl.lit(day.symbol), venue=pl.lit(VENUE))
        .select(pl.col(c.name).cast(c.dtype) for c in MARKET_TRADES.columns)
    )


def realized_volatility(quotes: pl.DataFrame, start: datetime, end: datetime) -> float | None:
    """Open-to-close realized volatility (a fraction) of the mid sampled every 5 minutes.

    sqrt(sum of squared log returns) of the mid prevailing (at or before) each grid point from
    `start` + 5 min to `end`, the first return measured from the session's first mid. Overnight
    moves are not seen, so this understates close-to-close volatility.
    """
    if quotes.is_empty():
        return None
    mids = quotes.select("ts", mid=(pl.col("bid_px") + pl.col("ask_px")) / 2)
    grid = pl.datetime_range(
        start, end, interval=f"{VOLATILITY_SAMPLING_S}s", time_unit="us", eager=True
    ).alias("ts")
    sampled = (
        pl.DataFrame(grid)
        .cast({"ts": TS})
        .filter(pl.col("ts") > start)
        .join_asof(mids, on="ts", strategy="backward")
        .drop_nulls("mid")
        .get_column("mid")
    )
    path = pl.concat([mids.get_column("mid").head(1), sampled])
    log_returns = path.log().diff().drop_nulls()
    return math.sqrt(float((log_returns**2).sum())) if log_returns.len() else None


def _instruments(per_day: list[dict[str, object]]) -> pl.DataFrame:
    """One contract `instruments` row per symbol from its imported days (see import_lobster)."""
    frame = pl.DataFrame(
        per_day,
        schema={
            "symbol": pl.String,
            "archive": pl.String,
            "volume": pl.Float64,
            "volatility": pl.Float64,
        },
    )
    quiet = (
        frame.group_by("symbol", maintain_order=True)
        .agg(pl.col("archive"), volume=pl.col("volume").sum())
        .filter(pl.col("volume") <= 0)
    )
    if quiet.height:
        symbol, archives = quiet["symbol"][0], ", ".join(quiet["archive"][0])
        raise LobsterError(
            f"{archives}: {symbol} has no executions (message types 4 and 5) on the imported "
            "day(s), so no average daily volume (adv_shares, which the contract requires > 0) can "
            "be derived; nothing was written. Import it together with days that have executions, "
            "or land an instruments row for it in a file of your own."
        )
    vol = (pl.col("volatility") ** 2).mean().sqrt()
    return (
        frame.group_by("symbol", maintain_order=True)
        .agg(
            adv_shares=pl.col("volume").mean(),
            # A mid that never moved (or no two-sided quote) gives no usable volatility: the
            # column is optional and must be > 0, so it is left null rather than written as 0.
            daily_volatility=pl.when(vol > 0).then(vol),
        )
        .with_columns(
            currency=pl.lit(CURRENCY),
            tick_size=pl.lit(TICK_SIZE),
            market=pl.lit(MARKET),
            sector=pl.lit(None),
            lot_size=pl.lit(None),
        )
        .select(pl.col(c.name).cast(c.dtype) for c in INSTRUMENTS.columns)
    )


def _merge_instruments(path: Path, imported: pl.DataFrame) -> pl.DataFrame:
    """The rows of an earlier import at `path` whose symbols were not imported now, plus ours."""
    if not path.exists():
        return imported
    expected = {c.name: c.dtype for c in INSTRUMENTS.columns}
    try:
        earlier = pl.read_parquet(path)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise LobsterError(f"{path}: cannot be read to merge the new symbols into: {exc}") from exc
    if dict(earlier.schema) != expected:
        raise LobsterError(
            f"{path}: exists but does not have the columns import-lobster writes; not replacing "
            "it (move it away or choose another output folder)"
        )
    kept = earlier.filter(~pl.col("symbol").is_in(imported["symbol"].implode()))
    return pl.concat([kept, imported]).sort("symbol")


def import_lobster(zip_paths: list[Path], out: Path) -> dict[str, int]:
    """Write landing files of the data contract from LOBSTER archives; return rows per table.

    Per archive: `<out>/quotes/date=<day>/<SYM>.parquet` and
    `<out>/market_trades/date=<day>/<SYM>.parquet` (a file of the same name is replaced); per
    symbol: a row of `<out>/instruments/lobster.parquet` (adv_shares = mean executed volume over
    the days of the symbol imported by this call, daily_volatility = root mean square of their
    realized volatilities, null where that is 0). Rows of that file for symbols not imported by
    this call are kept, so archives can be imported one call at a time. Every archive is read and
    checked before anything is written: a LobsterError leaves `out` as it was. A symbol without
    any execution on its imported days is a LobsterError (no adv_shares > 0 can be derived).
    The row counts returned are those of this call (instruments: the symbols imported).
    """
    out = Path(out)
    seen: set[tuple[str, date]] = set()
    frames: list[tuple[str, date, pl.DataFrame, pl.DataFrame]] = []
    per_day: list[dict[str, object]] = []
    for zip_path in zip_paths:
        day = read_lobster(Path(zip_path))
        if (day.symbol, day.trade_date) in seen:
            raise LobsterError(f"{zip_path}: {day.symbol} {day.trade_date} is given twice")
        seen.add((day.symbol, day.trade_date))
        quotes = quotes_from_book(day)
        trades = trades_from_messages(day)
        frames.append((day.symbol, day.trade_date, quotes, trades))
        per_day.append(
            {
                "symbol": day.symbol,
                "archive": str(zip_path),
                "volume": float(trades.get_column("size").sum()),
                "volatility": realized_volatility(quotes, day.session_start, day.session_end),
            }
        )
    instruments = _instruments(per_day)
    instruments_file = out / "instruments" / "lobster.parquet"
    merged = _merge_instruments(instruments_file, instruments)
    counts = {"quotes": 0, "market_trades": 0, "instruments": instruments.height}
    for symbol, trade_date, quotes, trades in frames:
        for table, frame in (("quotes", quotes), ("market_trades", trades)):
            folder = out / table / f"date={trade_date.isoformat()}"
            folder.mkdir(parents=True, exist_ok=True)
            frame.write_parquet(folder / f"{symbol}.parquet")
            counts[table] += frame.height
    instruments_file.parent.mkdir(parents=True, exist_ok=True)
    # Written aside and renamed over, so that the rows of earlier calls survive a failed write
    # (a leading "_" makes the ingester ignore a leftover).
    partial = instruments_file.with_name("_lobster.parquet.partial")
    merged.write_parquet(partial)
    partial.replace(instruments_file)
    return counts
