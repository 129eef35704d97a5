"""Reading the landing directory: layout, formats, coercion and file-level errors."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import polars as pl
import pytest

from eqs_pipeline.core.contract import TS
from eqs_pipeline.ingest import (
    LandingError,
    count_landed_rows,
    discover_trade_dates,
    raw_schema,
    read_table,
)
from eqs_pipeline.ingest.read import original_rows
from eqs_pipeline_tests.ingest.builders import DAY, folder, good_rows, land, land_day


def _provenance(df: pl.DataFrame) -> pl.DataFrame:
    return df.select(source_file="_source_file", source_row="_source_row")


QUOTE = {"symbol": "AAPL", "bid_px": "1", "bid_sz": "1", "ask_px": "2", "ask_sz": "1"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-01-02T14:30:00Z", datetime(2024, 1, 2, 14, 30, tzinfo=UTC)),
        ("2024-01-02T14:30:00z", datetime(2024, 1, 2, 14, 30, tzinfo=UTC)),
        ("2024-01-02 09:30:00-05:00", datetime(2024, 1, 2, 14, 30, tzinfo=UTC)),
        ("2024-01-02T16:30:00.25+02:00", datetime(2024, 1, 2, 14, 30, 0, 250000, tzinfo=UTC)),
        ("2024-01-02T14:30:00.123456789+0000", datetime(2024, 1, 2, 14, 30, 0, 123456, tzinfo=UTC)),
        ("2024-01-02T15:30+01:00", datetime(2024, 1, 2, 14, 30, tzinfo=UTC)),
    ],
)
@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_text_timestamps_become_utc_microseconds(tmp_path, fmt, text, expected):
    land(tmp_path, "quotes", [{**QUOTE, "ts": text}], fmt)
    df = read_table(tmp_path, "quotes", DAY)
    assert df.schema["ts"] == TS
    assert df["ts"].to_list() == [expected]
    assert df["_reasons"].to_list() == [[]]


def test_parquet_timestamps_in_any_zone_become_utc(tmp_path):
    ny = datetime(2024, 1, 2, 9, 30, tzinfo=ZoneInfo("America/New_York"))
    frame = pl.DataFrame({**{k: [v] for k, v in QUOTE.items()}, "ts": [ny]})
    frame = frame.with_columns(pl.col("ts").dt.cast_time_unit("ns"))
    frame.write_parquet(folder(tmp_path, "quotes") / "q.parquet")
    df = read_table(tmp_path, "quotes", DAY)
    assert df.schema["ts"] == TS
    assert df["ts"].to_list() == [datetime(2024, 1, 2, 14, 30, tzinfo=UTC)]
    # Strings in a Parquet file coerce like CSV values.
    assert df["bid_px"].to_list() == [1.0]


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_timestamp_without_offset_is_a_file_error_naming_file_and_column(tmp_path, fmt):
    rows = [{**QUOTE, "ts": "2024-01-02T14:30:00Z"}, {**QUOTE, "ts": "2024-01-02 14:30:01.5"}]
    land(tmp_path, "quotes", rows, fmt, name="naive")
    with pytest.raises(LandingError, match=rf"quotes/date=2024-01-02/naive\.{fmt}.*'ts'.*row 2"):
        read_table(tmp_path, "quotes", DAY)


def test_naive_parquet_timestamp_is_a_file_error(tmp_path):
    frame = pl.DataFrame({**{k: [v] for k, v in QUOTE.items()}, "ts": [datetime(2024, 1, 2)]})
    frame.write_parquet(folder(tmp_path, "quotes") / "naive.parquet")
    with pytest.raises(LandingError, match=r"naive\.parquet.*'ts'.*without time zone"):
        read_table(tmp_path, "quotes", DAY)


def test_unparseable_values_are_row_reasons_and_originals_are_kept(tmp_path):
    rows = [
        {**QUOTE, "ts": "2024-01-02T14:30:00Z", "note": "first"},
        {**QUOTE, "ts": "yesterday", "bid_px": "abc", "ask_sz": " ", "note": "second"},
        {**QUOTE, "ts": "2024-01-02T14:31:00Z", "bid_sz": "nan", "note": None},
    ]
    path = land(tmp_path, "quotes", rows, "csv", name="q")
    df = read_table(tmp_path, "quotes", DAY)
    assert df.columns == list(raw_schema("quotes"))  # the extra column lives only in the file
    assert df["_reasons"].to_list() == [
        [],
        ["bad_value:ts", "bad_value:bid_px"],
        ["bad_value:bid_sz"],
    ]
    assert df["bid_px"].to_list() == [1.0, None, 1.0]
    assert df["ask_sz"].to_list() == [1.0, None, 1.0]  # blank is absent, not bad
    assert df["_source_file"].unique().to_list() == ["quotes/date=2024-01-02/q.csv"]
    assert df["_source_row"].to_list() == [1, 2, 3]
    rows_json = original_rows(tmp_path, "quotes", _provenance(df))
    original = json.loads(rows_json[1])
    assert original == {**rows[1], "ask_sz": " "}
    assert path.exists()


def test_jsonl_keeps_the_original_line_and_numbers(tmp_path):
    lines = [
        '{"symbol": "AAPL", "ts": "2024-01-02T14:30:00Z", "bid_px": 1, "bid_sz": 2, "ask_px": 3, "ask_sz": 4, "x": [1]}',
        "",
        '{"symbol": "AAPL", "ts": "2024-01-02T14:30:01Z", "bid_px": true, "bid_sz": "7", "ask_px": 3.5, "ask_sz": 4}',
    ]
    (folder(tmp_path, "quotes") / "q.jsonl").write_text("\n".join(lines) + "\n")
    df = read_table(tmp_path, "quotes", DAY)
    assert original_rows(tmp_path, "quotes", _provenance(df)).to_list() == [lines[0], lines[2]]
    assert df["_source_row"].to_list() == [1, 2]
    assert df["bid_px"].to_list() == [1.0, None]
    assert df["bid_sz"].to_list() == [2.0, 7.0]
    assert df["_reasons"].to_list() == [[], ["bad_value:bid_px"]]
    assert count_landed_rows(tmp_path, "quotes", DAY) == 2


def test_mixed_formats_in_one_folder_concatenate_with_contract_types(tmp_path):
    rows = good_rows()["executions"]
    land(tmp_path, "executions", rows[:1], "parquet", name="a")
    land(tmp_path, "executions", rows[1:2], "csv", name="b")
    land(tmp_path, "executions", rows[2:], "jsonl", name="c")
    df = read_table(tmp_path, "executions", DAY)
    assert df.schema == pl.Schema(raw_schema("executions"))
    assert df["exec_id"].to_list() == ["E1", "E2", "E3"]
    assert df["exec_ts"].to_list() == [r["exec_ts"] for r in rows]
    assert df["fee"].to_list() == [0.9, -0.4, None]
    assert df["child_id"].to_list() == ["C1", None, "C2"]
    assert df["_source_file"].str.split("/").list.last().to_list() == [
        "a.parquet",
        "b.csv",
        "c.jsonl",
    ]
    assert count_landed_rows(tmp_path, "executions", DAY) == 3


def test_optional_columns_may_be_absent_but_required_ones_may_not(tmp_path):
    order = {k: v for k, v in good_rows()["orders"][1].items() if k not in ("urgency", "end_ts")}
    land(tmp_path, "orders", [order], "csv", name="ok")
    df = read_table(tmp_path, "orders", DAY)
    assert df["urgency"].to_list() == [None]
    assert df["trader"].to_list() == [None]
    assert df["allocation"].to_list() == [None]
    assert df["allocation_prob"].dtype == pl.Float64
    assert df["allocation_prob"].to_list() == [None]
    assert df["_reasons"].to_list() == [[]]

    land(tmp_path, "orders", [{k: v for k, v in order.items() if k != "broker"}], "jsonl", "nob")
    with pytest.raises(LandingError, match=r"orders/date=2024-01-02/nob\.jsonl.*'broker'"):
        read_table(tmp_path, "orders", DAY)


def test_corrupt_parquet_fails_the_whole_table_date(tmp_path):
    land(tmp_path, "quotes", good_rows()["quotes"], "parquet", name="good")
    (folder(tmp_path, "quotes") / "broken.parquet").write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(LandingError, match=r"broken\.parquet.*cannot read"):
        read_table(tmp_path, "quotes", DAY)
    with pytest.raises(LandingError, match=r"broken\.parquet"):
        count_landed_rows(tmp_path, "quotes", DAY)


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("ragged.csv", "symbol,ts\nAAPL,2024-01-02T14:30:00Z,extra\n"),
        ("bad.jsonl", '{"symbol": \n'),
    ],
)
def test_malformed_text_files_are_file_errors(tmp_path, name, content):
    (folder(tmp_path, "quotes") / name).write_text(content)
    with pytest.raises(LandingError, match=name.replace(".", r"\.")):
        read_table(tmp_path, "quotes", DAY)


@pytest.mark.parametrize(
    ("broken", "problem"),
    [
        ('{"symbol": "AAPL", ts: 1}', "not JSON"),
        ('["AAPL", 1]', "a JSON list, not an object"),
        # Polars refuses a lone low surrogate ("InvalidUnicodeCodepoint at character 0").
        ('{"symbol": "A\\udc00", "ts": "2024-01-02T14:30:00Z"}', "JSON with a lone surrogate"),
    ],
)
def test_a_broken_json_line_is_named_by_its_line_number(tmp_path, broken, problem):
    """Polars' parser names a character of the file; the error names the line (blank lines
    counted, as an editor counts them)."""
    good = json.dumps({"symbol": "AAPL", "ts": "2024-01-02T14:30:00Z", "bid_px": 1.0})
    text = "\n".join([good, "", good, broken, good]) + "\n"
    (folder(tmp_path, "quotes") / "q.jsonl").write_text(text)
    with pytest.raises(LandingError, match=rf"q\.jsonl: line 4 is {problem}"):
        read_table(tmp_path, "quotes", DAY)


def test_a_table_that_did_not_land_has_zero_rows_with_the_schema(tmp_path):
    df = read_table(tmp_path, "market_trades", DAY)
    assert df.height == 0
    assert df.schema == pl.Schema(raw_schema("market_trades"))
    assert count_landed_rows(tmp_path, "market_trades", DAY) == 0


def test_instruments_are_undated(tmp_path):
    land(tmp_path, "instruments", good_rows()["instruments"], "parquet")
    df = read_table(tmp_path, "instruments", None)
    assert df["symbol"].to_list() == ["AAPL", "MSFT"]
    assert df["_source_file"][0] == "instruments/part.parquet"
    with pytest.raises(ValueError, match="not dated"):
        read_table(tmp_path, "instruments", DAY)
    with pytest.raises(ValueError, match="pass a trade_date"):
        read_table(tmp_path, "orders", None)


def test_discover_trade_dates(tmp_path):
    land_day(tmp_path)
    land(tmp_path, "quotes", good_rows()["quotes"], "csv", day=date(2024, 1, 4))
    folder(tmp_path, "orders", date(2023, 12, 29))
    (tmp_path / "orders" / "_SUCCESS").write_text("")
    assert discover_trade_dates(tmp_path) == [date(2023, 12, 29), DAY, date(2024, 1, 4)]


def test_discover_rejects_a_missing_or_empty_landing(tmp_path):
    with pytest.raises(LandingError, match=r"does not exist.*date=YYYY-MM-DD"):
        discover_trade_dates(tmp_path / "nope")
    with pytest.raises(LandingError, match=r"no contract table folder.*date=YYYY-MM-DD"):
        discover_trade_dates(tmp_path)


@pytest.mark.parametrize(
    ("stray", "message"),
    [
        ("orders/orders.csv", r"orders\.csv: not a date=YYYY-MM-DD folder"),
        ("orders/date=2024-13-01/x.csv", r"'2024-13-01' is not a valid YYYY-MM-DD date"),
        ("fills/date=2024-01-02/x.csv", r"unexpected entries \['fills'\]"),
    ],
)
def test_discover_rejects_what_would_be_silently_lost(tmp_path, stray, message):
    land_day(tmp_path)
    path = tmp_path / stray
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("order_id\n")
    with pytest.raises(LandingError, match=message):
        discover_trade_dates(tmp_path)


def test_unsupported_file_in_a_date_folder_is_an_error(tmp_path):
    land(tmp_path, "quotes", good_rows()["quotes"], "csv")
    (folder(tmp_path, "quotes") / "extra.xlsx").write_bytes(b"")
    with pytest.raises(LandingError, match=r"extra\.xlsx"):
        read_table(tmp_path, "quotes", DAY)


def test_count_landed_rows_matches_the_reader_for_every_table(tmp_path):
    land_day(tmp_path)
    for table, rows in good_rows().items():
        day = None if table == "instruments" else DAY
        assert (
            count_landed_rows(tmp_path, table, day)
            == len(rows)
            == read_table(tmp_path, table, day).height
        )


def test_columns_already_coerced_pass_through_as_coercion_would_make_them(monkeypatch):
    """Text with nothing to strip and never empty, and floats all finite, are what coercion
    would make of them: they pass through uncopied (`_clean_columns`). Any other column is
    coerced: the same frame either way."""
    from eqs_pipeline.core.contract import CONTRACT
    from eqs_pipeline.ingest import read

    ts = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)
    clean = pl.DataFrame(
        {
            "symbol": ["AAPL", None, "IBM"],
            "ts": [ts, ts, None],
            "bid_px": [1.0, None, 2.0],
            "bid_sz": [1.0, 2.0, 3.0],
            "ask_px": [2.0, 3.0, 4.0],
            "ask_sz": [5.0, 6.0, 7.0],
        }
    )
    dirty = clean.with_columns(
        symbol=pl.Series([" AAPL", "", "IBM\t"]),
        bid_px=pl.Series([float("inf"), 1.0, 2.0]),
        ask_sz=pl.Series([float("nan"), 6.0, 7.0]),
    )
    contract = CONTRACT["quotes"]
    prices = {"symbol", "bid_px", "bid_sz", "ask_px", "ask_sz"}
    assert read._clean_columns(clean, contract) == prices
    assert read._clean_columns(dirty, contract) == {"bid_sz", "ask_px"}
    passed = [read._coerce(frame, contract, "x") for frame in (clean, dirty)]
    monkeypatch.setattr(read, "_clean_columns", lambda df, contract: set())
    for frame, got in zip((clean, dirty), passed, strict=True):
        assert got.equals(read._coerce(frame, contract, "x"))
    assert passed[1]["symbol"].to_list() == ["AAPL", None, "IBM"]
    assert passed[1]["bid_px"].to_list() == [None, 1.0, 2.0]
    assert passed[1]["_reasons"].to_list() == [["bad_value:bid_px", "bad_value:ask_sz"], [], []]
