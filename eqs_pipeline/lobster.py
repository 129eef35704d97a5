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
  DESIGN.md never depend on the order of equal stamps.
"""

from __future__ import annotations

import io
import math
import re
import zipfile
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import polars as pl

from eqs_pipeline.contract import INSTRUMENTS, MARKET_TRADES, QUOTES, TS

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
_TIME = r"^\d+(\.\d{1,9})?$"


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


def _local_to_utc(trade_date: date, us_after_midnight: pl.Expr) -> pl.Expr:
    """Microseconds after local midnight of trade_date -> UTC instant (DST-aware)."""
    midnight = pl.lit(datetime.combine(trade_date, datetime.min.time())).cast(pl.Datetime("us"))
    return (
        (midnight + pl.duration(microseconds=us_after_midnight))
        .dt.replace_time_zone(EXCHANGE_TZ, non_existent="raise")
        .dt.convert_time_zone("UTC")
    )


def _read_messages(raw: bytes, where: str, trade_date: date) -> pl.DataFrame:
    df = pl.read_csv(
        io.BytesIO(raw),
        has_header=False,
        new_columns=list(MESSAGE_COLUMNS),
        schema_overrides={"time": pl.String},
    ).with_row_index("seq")
    if df.width != len(MESSAGE_COLUMNS) + 1:
        raise LobsterError(f"{where}: expected {len(MESSAGE_COLUMNS)} columns, got {df.width - 1}")
    bad = df.filter(~pl.col("time").str.contains(_TIME))
    if bad.height:
        raise LobsterError(
            f"{where}: row {bad['seq'][0] + 1}: time {bad['time'][0]!r} is not seconds after "
            "midnight with at most nine decimals"
        )
    parts = pl.col("time").str.split(".")
    time_ns = parts.list.get(0).cast(pl.Int64) * 1_000_000_000 + parts.list.get(
        1, null_on_oob=True
    ).fill_null("0").str.pad_end(9, "0").cast(pl.Int64)
    df = df.with_columns(time_ns=time_ns).with_columns(
        ts=_local_to_utc(trade_date, pl.col("time_ns") // 1000),
        price=pl.when(pl.col("type") != HALT_TYPE).then(pl.col("price") / PRICE_SCALE),
    )
    back = df.filter(pl.col("time_ns") < pl.col("time_ns").shift(1))
    if back.height:
        raise LobsterError(f"{where}: row {back['seq'][0] + 1}: time goes backwards")
    return df.select(
        pl.col("seq").cast(pl.Int64), "ts", "time_ns", "type", "order_id", "size", "price",
        "direction",
    )  # fmt: skip


def _read_book(raw: bytes, where: str) -> pl.DataFrame:
    df = pl.read_csv(io.BytesIO(raw), has_header=False, infer_schema_length=10_000)
    if df.width < 4 or df.width % 4:
        raise LobsterError(f"{where}: expected 4 x levels columns, got {df.width}")
    df = df.select(pl.nth(range(4)).cast(pl.Int64))
    df.columns = list(BOOK_COLUMNS)
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
        trade_date = date.fromisoformat(meta["date"])
        messages = _read_messages(zf.read(msg_name), f"{zip_path}:{msg_name}", trade_date)
        book = _read_book(zf.read(book_name), f"{zip_path}:{book_name}")
    if book.height != messages.height:
        raise LobsterError(
            f"{zip_path}: {msg_name} has {messages.height} rows but {book_name} has "
            f"{book.height}; row i of the book must be the book after message i"
        )
    book = pl.concat([messages.select("seq", "ts"), book], how="horizontal")
    window = pl.DataFrame(
        {"ms": [int(meta["start"]), int(meta["end"])]}, schema={"ms": pl.Int64}
    ).select(_local_to_utc(trade_date, pl.col("ms") * 1000))
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


def import_lobster(zip_paths: list[Path], out: Path) -> dict[str, int]:
    """Write landing files of the data contract from LOBSTER archives; return rows per table.

    Per archive: `<out>/quotes/date=<day>/<SYM>.parquet` and
    `<out>/market_trades/date=<day>/<SYM>.parquet`; for all archives together:
    `<out>/instruments/lobster.parquet` (adv_shares = mean executed volume over the imported
    days, daily_volatility = root mean square of the daily realized volatilities). Files of the
    same names are replaced.
    """
    out = Path(out)
    counts = {"quotes": 0, "market_trades": 0, "instruments": 0}
    seen: set[tuple[str, date]] = set()
    per_day: list[dict[str, object]] = []
    for zip_path in zip_paths:
        day = read_lobster(Path(zip_path))
        if (day.symbol, day.trade_date) in seen:
            raise LobsterError(f"{zip_path}: {day.symbol} {day.trade_date} is given twice")
        seen.add((day.symbol, day.trade_date))
        quotes = quotes_from_book(day)
        trades = trades_from_messages(day)
        for table, frame in (("quotes", quotes), ("market_trades", trades)):
            folder = out / table / f"date={day.trade_date.isoformat()}"
            folder.mkdir(parents=True, exist_ok=True)
            frame.write_parquet(folder / f"{day.symbol}.parquet")
            counts[table] += frame.height
        per_day.append(
            {
                "symbol": day.symbol,
                "volume": float(trades.get_column("size").sum()),
                "volatility": realized_volatility(quotes, day.session_start, day.session_end),
            }
        )
    instruments = (
        pl.DataFrame(
            per_day,
            schema={"symbol": pl.String, "volume": pl.Float64, "volatility": pl.Float64},
        )
        .group_by("symbol", maintain_order=True)
        .agg(
            adv_shares=pl.col("volume").mean(),
            daily_volatility=(pl.col("volatility") ** 2).mean().sqrt(),
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
    (out / "instruments").mkdir(parents=True, exist_ok=True)
    instruments.write_parquet(out / "instruments" / "lobster.parquet")
    counts["instruments"] = instruments.height
    return counts
