"""The LOBSTER importer on the real samples (counts, times, contract types) and on edge cases."""

from __future__ import annotations

import zipfile
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import polars as pl
import pyarrow.parquet as pq
import pytest

from eqs_pipeline.core.contract import CONTRACT
from eqs_pipeline.ingest.read import read_table
from eqs_pipeline.ingest.rules import validate_instruments, validate_partition
from eqs_pipeline.lobster import LobsterDay, LobsterError, import_lobster, read_lobster
from eqs_pipeline_tests.lobster.samples import DATE, read_landed

# The README table of shared/data/lobster: rows, executions of type 4 and 5, shares executed.
README = {"AMZN": (57_515, 11_419, 810_755), "GOOG": (49_482, 11_678, 706_125)}
SESSION_OPEN = datetime(2012, 6, 21, 13, 30, tzinfo=UTC)  # 09:30 EDT
SESSION_CLOSE = datetime(2012, 6, 21, 20, 0, tzinfo=UTC)  # 16:00 EDT
LOCAL_MIDNIGHT_US = int(datetime(2012, 6, 21, 4, 0, tzinfo=UTC).timestamp()) * 1_000_000


@pytest.mark.parametrize("symbol", sorted(README))
def test_read_matches_the_readme(lobster_days: dict[str, LobsterDay], symbol: str) -> None:
    day = lobster_days[symbol]
    rows, executions, shares = README[symbol]
    execs = day.messages.filter(pl.col("type").is_in([4, 5]))
    assert (day.symbol, day.trade_date.isoformat()) == (symbol, DATE)
    assert day.messages.height == day.book.height == rows
    assert (execs.height, execs["size"].sum()) == (executions, shares)
    assert (day.session_start, day.session_end) == (SESSION_OPEN, SESSION_CLOSE)


@pytest.mark.parametrize(
    ("symbol", "seq", "text", "expected"),
    [
        # 34200.017459617 s after midnight EDT: nanoseconds floored to microseconds, never rounded up.
        ("AMZN", 0, 34_200_017_459_617, datetime(2012, 6, 21, 13, 30, 0, 17_459, tzinfo=UTC)),
        # '34200.18960767' has eight decimals: the missing digit is a trailing zero.
        ("AMZN", 1, 34_200_189_607_670, datetime(2012, 6, 21, 13, 30, 0, 189_607, tzinfo=UTC)),
        ("GOOG", 0, 34_200_015_105_074, datetime(2012, 6, 21, 13, 30, 0, 15_105, tzinfo=UTC)),
    ],
)
def test_time_conversion_by_hand(
    lobster_days: dict[str, LobsterDay], symbol: str, seq: int, text: int, expected: datetime
) -> None:
    row = lobster_days[symbol].messages.row(seq, named=True)
    assert (row["time_ns"], row["ts"]) == (text, expected)


@pytest.mark.parametrize("symbol", sorted(README))
def test_times_are_utc_in_session_and_truncated(
    lobster_days: dict[str, LobsterDay], symbol: str
) -> None:
    m = lobster_days[symbol].messages
    assert m.schema["ts"] == pl.Datetime("us", "UTC")
    assert m["ts"].is_sorted()
    assert m["ts"].min() >= SESSION_OPEN
    assert m["ts"].max() < SESSION_CLOSE
    epoch_us = m["ts"].dt.epoch("us")
    assert (epoch_us == LOCAL_MIDNIGHT_US + m["time_ns"] // 1000).all()


def test_landed_tables_have_contract_types(lobster_landing: tuple[Path, dict[str, int]]) -> None:
    landing, counts = lobster_landing
    for table in ("quotes", "market_trades", "instruments"):
        frame = read_landed(landing, table)
        assert frame.schema == pl.Schema(CONTRACT[table].polars_schema), table
        assert frame.height == counts[table], table
    parquet = landing / "quotes" / f"date={DATE}" / "AMZN.parquet"
    ts_type = pq.read_schema(parquet).field("ts").type
    assert (ts_type.unit, ts_type.tz) == ("us", "UTC")
    described = duckdb.sql(f"describe select * from read_parquet('{parquet}')").fetchall()
    assert dict((r[0], r[1]) for r in described)["ts"] == "TIMESTAMP WITH TIME ZONE"


def test_the_contract_ingester_stages_every_row(
    lobster_landing: tuple[Path, dict[str, int]],
) -> None:
    """Landing -> `read_table` -> row rules: nothing quarantined, nothing lost."""
    landing, counts = lobster_landing
    trade_date = date.fromisoformat(DATE)
    instruments = validate_instruments(read_table(landing, "instruments", None), landing=landing)
    raw = {t: read_table(landing, t, trade_date) for t in ("quotes", "market_trades")}
    result = validate_partition(raw, trade_date, instruments.staged["instruments"], landing=landing)
    assert instruments.quarantine.height == result.quarantine.height == 0
    assert instruments.staged["instruments"].height == counts["instruments"]
    for table in ("quotes", "market_trades"):
        assert result.staged[table].height == counts[table], table


def test_market_trades_are_the_executions(lobster_landing: tuple[Path, dict[str, int]]) -> None:
    trades = read_landed(lobster_landing[0], "market_trades")
    by_symbol = trades.group_by("symbol").agg(pl.len(), pl.col("size").sum()).sort("symbol")
    assert by_symbol.rows() == [(s, n, float(sh)) for s, (_, n, sh) in sorted(README.items())]
    assert (trades["venue"] == "XNAS").all()
    assert (trades["price"] > 0).all()
    assert trades["ts"].is_between(SESSION_OPEN, SESSION_CLOSE, closed="left").all()


def test_quotes_are_the_top_of_book(
    lobster_days: dict[str, LobsterDay], lobster_landing: tuple[Path, dict[str, int]]
) -> None:
    """Quotes are two-sided, never crossed or locked, one per microsecond, and reproduce the book.

    For every message, the quote at or before its microsecond is the book after the last message
    of that microsecond; consecutive quotes differ (a quote is emitted only on a change).
    """
    quotes = read_landed(lobster_landing[0], "quotes")
    assert quotes.null_count().sum_horizontal().item() == 0
    assert (quotes["bid_px"] < quotes["ask_px"]).all()
    assert (quotes.select(pl.col("bid_sz", "ask_sz").min()).row(0)) >= (1.0, 1.0)
    assert quotes["ts"].is_between(SESSION_OPEN, SESSION_CLOSE, closed="left").all()
    values = ["bid_px", "bid_sz", "ask_px", "ask_sz"]
    for symbol, day in lobster_days.items():
        q = quotes.filter(pl.col("symbol") == symbol)
        assert q["ts"].diff().drop_nulls().dt.total_microseconds().min() > 0
        same_as_previous = pl.all_horizontal(pl.col(c) == pl.col(c).shift(1) for c in values)
        assert not q.select(same_as_previous.fill_null(False)).to_series().any()
        end_of_us = day.book.unique(subset="ts", keep="last", maintain_order=True)
        seen = end_of_us.join_asof(q.select("ts", *values), on="ts", suffix="_q")
        for c in values:
            assert (seen[c] == seen[f"{c}_q"]).all(), (symbol, c)


def test_instruments(lobster_landing: tuple[Path, dict[str, int]]) -> None:
    inst = read_landed(lobster_landing[0], "instruments").sort("symbol")
    assert inst.select("symbol", "currency", "tick_size", "adv_shares", "market").rows() == [
        ("AMZN", "USD", 0.01, 810_755.0, "US"),
        ("GOOG", "USD", 0.01, 706_125.0, "US"),
    ]
    # Open-to-close realized volatility of large caps on one day: between 0.2% and 5%.
    assert inst["daily_volatility"].is_between(0.002, 0.05).all()


# --- Edge cases LOBSTER documents but the two samples do not contain -------------------------


def _write_zip(path: Path, messages: list[str], book: list[str], symbol: str = "TEST") -> Path:
    stem = f"{symbol}_2012-06-21_34200000_57600000"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{stem}_message_1.csv", "\n".join(messages) + "\n")
        zf.writestr(f"{stem}_orderbook_1.csv", "\n".join(book) + "\n")
    return path


EDGE_MESSAGES = [
    "34200,1,1,100,1000000,1",  # no decimals: 09:30:00 sharp
    "34200.5,1,2,100,1010000,-1",
    "34201.000000001,3,2,100,1010000,-1",  # ask side empties
    "34202.1,1,3,50,1010000,-1",
    "34203.25,7,0,0,-1,-1",  # trading halt: price is a code
    "34204.0000005,1,4,10,1020000,1",  # a buy at 102.00 above the 101.00 ask: crossed row
    "34204.000001,4,3,50,1010000,-1",  # next microsecond: the buy takes the ask
    "34205,5,0,20,1005000,1",
]
EDGE_BOOK = [
    "9999999999,0,1000000,100",
    "1010000,100,1000000,100",
    "9999999999,0,1000000,100",
    "1010000,50,1000000,100",
    "1010000,50,1000000,100",
    "1010000,50,1020000,10",
    "9999999999,0,1020000,10",
    "9999999999,0,1020000,10",
]


def test_dummy_sides_halts_and_crosses_never_reach_quotes(tmp_path: Path) -> None:
    archive = _write_zip(tmp_path / "edge.zip", EDGE_MESSAGES, EDGE_BOOK)
    day = read_lobster(archive)
    assert day.messages["time_ns"].to_list()[:2] == [34_200_000_000_000, 34_200_500_000_000]
    assert day.messages.filter(pl.col("type") == 7)["price"].to_list() == [None]
    assert day.book["ask_px"].null_count() == 4
    counts = import_lobster([archive], tmp_path / "out")
    quotes = read_landed(tmp_path / "out", "quotes")
    # Rows 0, 2, 6, 7 have an empty ask, row 5 is crossed, row 4 (halt) repeats row 3: only
    # rows 1 and 3 are quotes.
    assert quotes.select("bid_px", "ask_px", "ask_sz").rows() == [
        (100.0, 101.0, 100.0),
        (100.0, 101.0, 50.0),
    ]
    trades = read_landed(tmp_path / "out", "market_trades")
    assert trades.select("price", "size").rows() == [(101.0, 50.0), (100.5, 20.0)]
    assert counts == {"quotes": 2, "market_trades": 2, "instruments": 1}


def test_errors_name_the_file(tmp_path: Path) -> None:
    short = _write_zip(tmp_path / "short.zip", EDGE_MESSAGES, EDGE_BOOK[:-1])
    with pytest.raises(LobsterError, match=r"short\.zip.*has 8 rows but .* has 7"):
        read_lobster(short)
    backwards = _write_zip(tmp_path / "back.zip", EDGE_MESSAGES[1::-1], EDGE_BOOK[:2])
    with pytest.raises(LobsterError, match="row 2: time goes backwards"):
        read_lobster(backwards)
    no_book = tmp_path / "nobook.zip"
    with zipfile.ZipFile(no_book, "w") as zf:
        zf.writestr("TEST_2012-06-21_34200000_57600000_message_1.csv", EDGE_MESSAGES[0])
    with pytest.raises(LobsterError, match="no orderbook file"):
        read_lobster(no_book)
    ok = _write_zip(tmp_path / "ok.zip", EDGE_MESSAGES, EDGE_BOOK)
    with pytest.raises(LobsterError, match="given twice"):
        import_lobster([ok, ok], tmp_path / "out")
