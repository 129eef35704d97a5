"""The LOBSTER importer on malformed archives, symbol-days it cannot describe, repeated calls.

Every malformed archive must raise `LobsterError` naming the archive, the member file and, where
there is one, the row (docs/LOBSTER.md); the CLI turns it into exit code 2. An instruments row
must pass the importer's own ingest; importing one archive per call must keep earlier symbols.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from eqs_pipeline.cli.main import main
from eqs_pipeline.ingest.read import read_table
from eqs_pipeline.ingest.rules import validate_instruments
from eqs_pipeline.lobster import LobsterError, import_lobster, read_lobster

MESSAGES = "34200.1,1,1,100,1000000,1\n34200.2,1,2,100,1010000,-1\n34201.5,4,1,40,1000000,1\n"
BOOK = "9999999999,0,1000000,100\n1010000,100,1000000,100\n1010000,100,1000000,60\n"


def _zip(path: Path, messages: str, book: str, symbol: str = "TEST") -> Path:
    stem = f"{symbol}_2012-06-21_34200000_57600000"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{stem}_message_1.csv", messages)
        zf.writestr(f"{stem}_orderbook_1.csv", book)
    return path


MSG, OB = "TEST_2012-06-21_34200000_57600000_message_1.csv", "TEST_2012-06-21_34200000_57600000_orderbook_1.csv"  # fmt: skip

MALFORMED = {
    "empty message file": ("", BOOK, MSG, "the file is empty"),
    "empty files": ("", "", MSG, "the file is empty"),
    "empty book file": (MESSAGES, "\n", OB, "the file is empty"),
    "5 message columns": (
        "34200.1,1,1,100,1000000\n34200.2,1,2,100,1010000\n",
        BOOK,
        MSG,
        "expected 6 columns, got 5",
    ),
    "7 message columns": (
        "34200.1,1,1,100,1000000,1,0\n34200.2,1,2,100,1010000,-1,0\n",
        BOOK,
        MSG,
        "expected 6 columns, got 7",
    ),
    "ragged message row": (
        MESSAGES + "34202,1,3,10,1000000,1,9\n",
        BOOK,
        MSG,
        "not a readable CSV file",
    ),
    "message header row": (
        "time,type,order_id,size,price,direction\n" + MESSAGES,
        BOOK,
        MSG,
        "row 1: time 'time' is not seconds",
    ),
    "decimal message price": (
        MESSAGES.replace("1010000,-1", "101.00,-1"),
        BOOK,
        MSG,
        r"row 2, column 5 \(price\): '101.00' is not an integer",
    ),
    "empty message field": (
        MESSAGES.replace("4,1,40,", "4,1,,"),
        BOOK,
        MSG,
        r"row 3, column 4 \(size\): is empty",
    ),
    "book header row": (
        MESSAGES,
        "ask_price_1,ask_size_1,bid_price_1,bid_size_1\n" + BOOK,
        OB,
        r"row 1, column 1 \(ask_px\): 'ask_price_1' is not an integer",
    ),
    "decimal book prices": (
        MESSAGES,
        BOOK.replace("1010000,100,1000000,100", "101.00,100,100.00,100"),
        OB,
        r"row 2, column 1 \(ask_px\): '101.00' is not an integer",
    ),
    "5 book columns": (MESSAGES, BOOK.replace("\n", ",7\n"), OB, "expected 4 x levels columns"),
}


@pytest.mark.parametrize("case", list(MALFORMED), ids=list(MALFORMED))
def test_malformed_archives_raise_lobster_errors_naming_archive_member_and_row(
    tmp_path: Path, case: str
) -> None:
    messages, book, member, what = MALFORMED[case]
    archive = _zip(tmp_path / "bad.zip", messages, book)
    with pytest.raises(LobsterError, match=rf"^{re.escape(f'{archive}:{member}: ')}{what}"):
        read_lobster(archive)


def test_decimal_book_prices_are_not_truncated(tmp_path: Path) -> None:
    """A book price of 101.99 used to become 101 by an Int64 cast, i.e. 0.0101 dollars."""
    archive = _zip(tmp_path / "bad.zip", MESSAGES, BOOK.replace("1010000,100,", "101.99,100,"))
    with pytest.raises(LobsterError, match=r"'101\.99' is not an integer"):
        read_lobster(archive)


def test_the_command_exits_2_with_the_message(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "bad.zip", "34200.1,1,1,100,1000000\n", "1,2,3,4\n")
    result = CliRunner().invoke(main, ["import-lobster", str(archive), "--out", str(tmp_path)])
    assert result.exit_code == 2, result.output
    output = result.output.replace("\n", "")
    assert "error" in output and "bad.zip" in output and "expected 6 columns, got 5" in output
    assert not isinstance(result.exception, LobsterError)  # handled, not a traceback


def test_a_bad_archive_writes_nothing(tmp_path: Path) -> None:
    good = _zip(tmp_path / "good.zip", MESSAGES, BOOK, symbol="GOOD")
    bad = _zip(tmp_path / "bad.zip", "", "")
    with pytest.raises(LobsterError, match=r"bad\.zip"):
        import_lobster([good, bad], tmp_path / "out")
    assert not (tmp_path / "out").exists()


# --- Instruments rows the importer's own ingest accepts ---------------------------------------


def _staged_instruments(landing: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    result = validate_instruments(read_table(landing, "instruments", None), landing=landing)
    return result.staged["instruments"], result.quarantine


def test_a_symbol_day_without_executions_is_an_error_naming_archive_and_symbol(
    tmp_path: Path,
) -> None:
    head = "".join(MESSAGES.splitlines(keepends=True)[:2])  # without the execution of row 3
    archive = _zip(
        tmp_path / "quiet.zip", head, "".join(BOOK.splitlines(keepends=True)[:2]), "QUIET"
    )
    with pytest.raises(LobsterError, match=r"quiet\.zip: QUIET has no executions"):
        import_lobster([archive], tmp_path / "out")
    assert not (tmp_path / "out").exists()
    # Together with a day that has executions the symbol gets an ADV (mean over both days).
    other = tmp_path / "other.zip"
    with zipfile.ZipFile(other, "w") as zf:
        stem = "QUIET_2012-06-22_34200000_57600000"
        zf.writestr(f"{stem}_message_1.csv", MESSAGES)
        zf.writestr(f"{stem}_orderbook_1.csv", BOOK)
    import_lobster([archive, other], tmp_path / "out")
    staged, quarantine = _staged_instruments(tmp_path / "out")
    assert quarantine.height == 0
    assert staged.select("symbol", "adv_shares").rows() == [("QUIET", 20.0)]


def test_a_mid_that_never_moves_gives_a_null_volatility_and_the_row_is_staged(
    tmp_path: Path,
) -> None:
    # A hidden execution (type 5) leaves the visible book as it was: the mid never moves.
    messages = "34200.1,1,1,100,1000000,1\n34200.2,1,2,100,1010000,-1\n34201.5,5,0,30,1005000,1\n"
    book = "9999999999,0,1000000,100\n1010000,100,1000000,100\n1010000,100,1000000,100\n"
    archive = _zip(tmp_path / "flat.zip", messages, book, symbol="FLAT")
    import_lobster([archive], tmp_path / "out")
    staged, quarantine = _staged_instruments(tmp_path / "out")
    assert quarantine.height == 0
    assert staged.select("symbol", "adv_shares", "daily_volatility").rows() == [
        ("FLAT", 30.0, None)
    ]


# --- One archive per call into the same folder -------------------------------------------------


def test_separate_calls_keep_the_instruments_of_earlier_symbols(tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = _zip(tmp_path / "a.zip", MESSAGES, BOOK, symbol="AAA")
    second = _zip(tmp_path / "b.zip", MESSAGES, BOOK, symbol="BBB")
    assert import_lobster([first], out)["instruments"] == 1
    assert import_lobster([second], out)["instruments"] == 1
    inst = pl.read_parquet(out / "instruments" / "lobster.parquet")
    assert inst.select("symbol", "adv_shares").rows() == [("AAA", 40.0), ("BBB", 40.0)]
    # Re-importing a symbol replaces its row only.
    again = _zip(tmp_path / "a2.zip", MESSAGES.replace(",40,", ",25,"), BOOK, symbol="AAA")
    import_lobster([again], out)
    inst = pl.read_parquet(out / "instruments" / "lobster.parquet")
    assert inst.select("symbol", "adv_shares").rows() == [("AAA", 25.0), ("BBB", 40.0)]
    staged, quarantine = _staged_instruments(out)
    assert staged.height == 2 and quarantine.height == 0
    assert sorted(p.name for p in (out / "instruments").iterdir()) == ["lobster.parquet"]


def test_a_foreign_lobster_parquet_is_not_replaced(tmp_path: Path) -> None:
    folder = tmp_path / "out" / "instruments"
    folder.mkdir(parents=True)
    pl.DataFrame({"symbol": ["X"], "adv": [1.0]}).write_parquet(folder / "lobster.parquet")
    archive = _zip(tmp_path / "a.zip", MESSAGES, BOOK, symbol="AAA")
    with pytest.raises(LobsterError, match="does not have the columns import-lobster writes"):
        import_lobster([archive], tmp_path / "out")
    assert pl.read_parquet(folder / "lobster.parquet").columns == ["symbol", "adv"]
