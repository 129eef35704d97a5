"""Edge cases of landed files found in review: odd Parquet types and zones, CSV blank and short
rows, JSON Lines keys of changing type, float ids, and duplicates whose bad values differ."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from eqs_pipeline.ingest import (
    LandingError,
    conservation_report,
    count_landed_rows,
    read_table,
    validate_partition,
)
from eqs_pipeline.ingest import read as read_module
from eqs_pipeline.ingest.layout import first_csv_problem
from eqs_pipeline.ingest.read import original_rows
from eqs_pipeline.ingest.rules import PARTITION_TABLES
from eqs_pipeline_tests.ingest.builders import (
    DAY,
    folder,
    good_rows,
    ingest_landed,
    land,
    land_day,
    write_csv,
)

HEADER = "symbol,ts,bid_px,bid_sz,ask_px,ask_sz"
ROW = "AAPL,2024-01-02T14:30:00Z,1,1,2,1"
BASE = '"symbol":"AAPL","ts":"2024-01-02T14:30:00Z","bid_sz":1,"ask_px":2,"ask_sz":1'
T0 = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)


def _quotes_table(extra: dict[str, pa.Array], bid: float = 3.0, ts_type=None) -> pa.Table:
    """Two quotes, the second crossed (bid 3 > ask 2) unless `bid` says otherwise."""
    ts = pa.array([T0, T0], pa.timestamp("us", "UTC"))
    if ts_type is not None:
        ts = ts.cast(pa.int64()).cast(ts_type)
    return pa.table(
        {
            "symbol": ["AAPL", "AAPL"], "ts": ts, "bid_px": [1.0, bid], "bid_sz": [1.0, 1.0],
            "ask_px": [2.0, 2.0], "ask_sz": [1.0, 1.0], **extra,
        }
    )  # fmt: skip


def _validate_quotes(landing):
    raw = read_table(landing, "quotes", DAY)
    result = validate_partition({"quotes": raw}, DAY, None, landing=landing)
    report = conservation_report(result, {"quotes": count_landed_rows(landing, "quotes", DAY)})
    assert report["holds"].all()
    return result


# 1. Extra Parquet columns of types JSON lacks ------------------------------------------------


def test_quarantined_parquet_rows_keep_binary_and_duration_columns_as_text(tmp_path):
    ids = [uuid.UUID(int=1).bytes, uuid.UUID(int=2).bytes]
    extra = {
        "quote_uuid": pa.array(ids, pa.binary(16)),
        "blob": pa.array([b"\x00\xff", None], pa.binary()),
        "latency": pa.array([timedelta(milliseconds=3)] * 2, pa.duration("ms")),
        "nested": pa.array([[b"\x01"], [b"\x02"]], pa.list_(pa.binary())),
    }
    pq.write_table(_quotes_table(extra), folder(tmp_path, "quotes") / "q.parquet")
    result = _validate_quotes(tmp_path)
    assert result.staged["quotes"].height == 1
    (row_json,) = result.quarantine["row_json"].to_list()
    original = json.loads(row_json)
    assert original["quote_uuid"] == ids[1].hex()
    assert original["blob"] is None
    assert original["latency"] == "PT0.003S"
    assert original["nested"] == ["02"]
    assert original["bid_px"] == 3.0


def test_a_row_that_cannot_be_written_as_json_is_a_landing_error_naming_the_file(
    tmp_path, monkeypatch
):
    pq.write_table(_quotes_table({}), folder(tmp_path, "quotes") / "q.parquet")
    raw = read_table(tmp_path, "quotes", DAY)

    def fail(series):
        raise RuntimeError("no text for this value")

    monkeypatch.setattr(read_module, "_encode_column", fail)
    with pytest.raises(LandingError, match=r"quotes/date=2024-01-02/q\.parquet.*as JSON"):
        validate_partition({"quotes": raw}, DAY, None, landing=tmp_path)


# 2. Parquet time zones Polars cannot parse ----------------------------------------------------


@pytest.mark.parametrize("zone", ["Z", "+05:30"])
def test_parquet_timestamps_in_zones_polars_cannot_parse_are_read_as_utc(tmp_path, zone):
    table = _quotes_table({}, bid=1.5, ts_type=pa.timestamp("us", zone))
    pq.write_table(table, folder(tmp_path, "quotes") / "q.parquet")
    df = read_table(tmp_path, "quotes", DAY)
    assert df["ts"].to_list() == [T0, T0]
    assert df["_reasons"].to_list() == [[], []]


def test_a_polars_panic_while_reading_is_a_landing_error_naming_the_file(tmp_path):
    # A zone Polars cannot parse inside a struct: Polars panics reading it.
    stamps = pa.array([0, 0], pa.int64()).cast(pa.timestamp("ms", "Z"))
    extra = {"meta": pa.StructArray.from_arrays([stamps], ["at"])}
    pq.write_table(_quotes_table(extra), folder(tmp_path, "quotes") / "q.parquet")
    with pytest.raises(LandingError, match=r"quotes/date=2024-01-02/q\.parquet: cannot read"):
        read_table(tmp_path, "quotes", DAY)


# 3. JSON Lines keys whose JSON type changes from line to line ---------------------------------


@pytest.mark.parametrize(
    ("lines", "bid_px", "reasons"),
    [
        ([f'{{{BASE},"bid_px":1,"note":1}}', f'{{{BASE},"bid_px":1,"note":[1]}}'], [1.0, 1.0], []),
        ([f'{{{BASE},"bid_px":1,"m":{{"a":1}}}}', f'{{{BASE},"bid_px":1,"m":[1]}}'], [1.0] * 2, []),
        (
            [f'{{{BASE},"bid_px":1}}', f'{{{BASE},"bid_px":[1]}}'],
            [1.0, None],
            ["bad_value:bid_px"],
        ),
    ],
)
def test_jsonl_keys_of_changing_json_type_do_not_fail_the_file(tmp_path, lines, bid_px, reasons):
    (folder(tmp_path, "quotes") / "q.jsonl").write_text("\n".join(lines) + "\n")
    df = read_table(tmp_path, "quotes", DAY)
    assert df["bid_px"].to_list() == bid_px
    assert df["_reasons"].to_list() == [[], reasons]


def test_jsonl_key_null_on_every_line_is_present_and_absent_key_is_missing(tmp_path):
    lines = [f'{{{BASE},"bid_px":null}}', f'{{{BASE},"bid_px":null}}']
    (folder(tmp_path, "quotes") / "q.jsonl").write_text("\n".join(lines) + "\n")
    assert read_table(tmp_path, "quotes", DAY)["bid_px"].to_list() == [None, None]
    (folder(tmp_path, "quotes") / "q.jsonl").write_text(f"{{{BASE}}}\n")
    with pytest.raises(LandingError, match=r"q\.jsonl: required column\(s\) \['bid_px'\]"):
        read_table(tmp_path, "quotes", DAY)


# 4. Non-finite floats keep their text -------------------------------------------------------


def test_non_finite_parquet_prices_keep_their_text_in_row_json(tmp_path):
    land_day(tmp_path)
    path = folder(tmp_path, "executions") / "part.parquet"
    prices = pl.Series([float("nan"), float("inf"), float("-inf")])
    pl.read_parquet(path).with_columns(price=prices).write_parquet(path)
    q = ingest_landed(tmp_path).quarantine.filter(pl.col("source_table") == "executions")
    assert q["reasons"].to_list() == [["bad_value:price"]] * 3
    texts = [json.loads(r)["price"] for r in q.sort("source_row")["row_json"]]
    assert texts == ["NaN", "Infinity", "-Infinity"]


# 5. Duplicates whose bad values differ --------------------------------------------------------


def test_same_key_rows_with_different_bad_values_are_all_quarantined(tmp_path):
    land_day(tmp_path)
    e4 = {**good_rows()["executions"][0], "exec_id": "E4"}
    write_csv(
        folder(tmp_path, "executions") / "resend.csv",
        [{**e4, "price": "abc"}, {**e4, "price": "190,05"}],
    )
    result = ingest_landed(tmp_path)
    q = result.quarantine.filter(pl.col("source_file").str.ends_with("resend.csv"))
    assert sorted(json.loads(r)["price"] for r in q["row_json"]) == ["190,05", "abc"]
    assert q["reasons"].to_list() == [["bad_value:price", "duplicate_key_conflict"]] * 2
    counts = result.counts.filter(pl.col("source_file").str.ends_with("resend.csv"))
    assert counts.select("landed_rows", "quarantined_rows", "collapsed_duplicates").row(0) == (
        2,
        2,
        0,
    )
    landed = {t: count_landed_rows(tmp_path, t, DAY) for t in PARTITION_TABLES}
    assert conservation_report(result, landed, DAY)["holds"].all()


# 6. CSV empty lines and short rows ------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        f"{HEADER}\n{ROW}\n{ROW}\n\n",
        f"{HEADER}\n{ROW}\n\n\n{ROW}\n",
        f"{HEADER}\r\n{ROW}\r\n{ROW}\r\n\r\n",
        f"\n{HEADER}\n{ROW}\n{ROW}\n\n\n",
    ],
)
def test_csv_empty_lines_are_not_rows(tmp_path, text):
    (folder(tmp_path, "quotes") / "q.csv").write_text(text)
    result = _validate_quotes(tmp_path)
    assert result.staged["quotes"].height == 2
    assert result.quarantine.height == 0
    assert count_landed_rows(tmp_path, "quotes", DAY) == 2


def test_a_csv_of_white_space_only_has_no_rows(tmp_path):
    (folder(tmp_path, "orders") / "o.csv").write_text(" \n\t\n")
    assert read_table(tmp_path, "orders", DAY).height == 0
    assert count_landed_rows(tmp_path, "orders", DAY) == 0


def test_a_csv_with_carriage_returns_alone_for_line_ends_is_refused(tmp_path):
    """Polars read such a file as one header line: its rows were lost without a word."""
    rows = good_rows()["orders"]
    columns = list(rows[0])
    text = "\r".join(
        [",".join(columns), *(",".join(str(r[c] or "") for c in columns) for r in rows)]
    )
    (folder(tmp_path, "orders") / "o.csv").write_bytes(text.encode() + b"\r")
    with pytest.raises(LandingError, match=r"orders/date=2024-01-02/o\.csv: .*carriage return"):
        read_table(tmp_path, "orders", DAY)


def test_csv_line_of_separators_only_is_a_row_with_every_value_absent(tmp_path):
    (folder(tmp_path, "quotes") / "q.csv").write_text(f"{HEADER}\n{ROW}\n,,,,,\n\n")
    result = _validate_quotes(tmp_path)
    assert result.quarantine["source_row"].to_list() == [2]
    assert result.quarantine["reasons"][0].to_list()[0] == "missing:symbol"


def test_csv_empty_last_value_is_not_a_short_row(tmp_path):
    (folder(tmp_path, "quotes") / "q.csv").write_text(f"{HEADER}\n{ROW}\n{ROW[:-1]}\n")
    df = read_table(tmp_path, "quotes", DAY)
    assert df["ask_sz"].to_list() == [1.0, None]
    assert count_landed_rows(tmp_path, "quotes", DAY) == 2


def test_csv_short_row_is_a_file_error_naming_the_row(tmp_path):
    text = f"{HEADER}\n{ROW}\n\nAAPL,2024-01-02T14:30:01Z\n"
    (folder(tmp_path, "quotes") / "q.csv").write_text(text)
    with pytest.raises(LandingError, match=r"q\.csv: 1 row.*data row 2 has 2 field\(s\)"):
        read_table(tmp_path, "quotes", DAY)
    with pytest.raises(LandingError, match=r"q\.csv: cannot count"):
        count_landed_rows(tmp_path, "quotes", DAY)


def test_csv_long_row_is_a_file_error_naming_the_row(tmp_path):
    text = f"{HEADER}\n{ROW}\n{ROW},extra\n{ROW}\n"
    (folder(tmp_path, "quotes") / "q.csv").write_text(text)
    with pytest.raises(
        LandingError, match=r"q\.csv: 1 row.*data row 2 has 7 field\(s\), the header 6"
    ):
        read_table(tmp_path, "quotes", DAY)


REST = ROW.removeprefix("AAPL,")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        # A row of 7 fields after a value over two lines and a blank line: data row 2, line 5.
        (
            f'{HEADER}\n"AA\nPL",{REST}\n\n{ROW},extra\n{ROW}\n',
            r"1 row\(s\) .*data row 2 has 7 field\(s\), the header 6, on line 5: 'AAPL,",
        ),
        (
            f"{HEADER}\n{ROW}\n\n{ROW}\nAAPL,2024-01-02T14:30:01Z\n{ROW},x\n",
            r"2 row\(s\) .*data row 3 has 2 field\(s\), the header 6, on line 5",
        ),
        (f'{HEADER}\n{ROW}\n"AAPL,{REST}\n{ROW}\n', "line 3 opens a quoted value that is never"),
        (f'{HEADER}\n{ROW}\n{ROW}\n"AAPL" ,{REST}\n', "line 4 has text after the closing quote"),
        (f'{HEADER}\n{ROW}\n\nAA"PL,{REST}\n', "line 4 has a '\"' inside a value that does not"),
        (f"{HEADER}\n{ROW}\n\xff\xfeAAPL,{REST}\n".encode("latin-1"), "line 3 is not UTF-8 text"),
    ],
    ids=["long", "short", "unclosed-quote", "after-quote", "stray-quote", "not-utf8"],
)
def test_a_csv_that_cannot_be_parsed_is_named_by_its_line(tmp_path, content, message):
    """As a broken JSON line is: the line an editor shows (blank lines and the lines of a value
    over several lines counted), besides the data row where rows are counted."""
    path = folder(tmp_path, "quotes") / "q.csv"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    with pytest.raises(LandingError, match=rf"^quotes/date=2024-01-02/q\.csv: .*{message}"):
        read_table(tmp_path, "quotes", DAY)


@pytest.mark.parametrize(
    "text",
    [
        f'{HEADER}\n"AAPL",{REST}\n',  # a quoted value
        f'{HEADER}\n"A,""A"",\n\nPL",{REST}\n',  # a separator, quotes and a blank line inside one
        f'{HEADER}\r\n"""AAPL""",{REST}\r\n\r\n',  # a value of quotes; CRLF line ends
        f'{HEADER}\nA""PL,{REST}\n',  # an even number of quotes inside: read as they are
        f"{HEADER}\n{ROW}",  # no line end at the end
    ],
)
def test_a_well_formed_csv_has_no_problem_to_name(tmp_path, text):
    assert first_csv_problem(text.encode()) is None
    path = folder(tmp_path, "quotes") / "q.csv"
    path.write_text(text)
    assert first_csv_problem(str(path)) is None
    assert read_table(tmp_path, "quotes", DAY).height == 1


def test_a_value_that_ends_in_a_doubled_quote_is_still_open(tmp_path):
    """'"A""' is A and a quote, still open: not A then a stray quote."""
    found = first_csv_problem(f'{HEADER}\n"A""\n{ROW}\n'.encode())
    assert found is not None and found.line == 2 and "never closed" in found.problem


# 7. Float ids --------------------------------------------------------------------------------


def test_whole_float_ids_in_parquet_match_the_same_ids_as_text(tmp_path):
    rows = good_rows()
    for child, child_id in zip(rows["child_orders"], ["7", "8"], strict=True):
        child["child_id"] = child_id
    land_day(tmp_path, rows)  # child orders as JSON Lines, ids as text
    path = folder(tmp_path, "executions") / "part.parquet"
    # What pandas writes for an integer id column with a missing value: float64.
    pl.read_parquet(path).with_columns(child_id=pl.Series([7.0, None, 8.0])).write_parquet(path)
    result = ingest_landed(tmp_path)
    assert result.staged["executions"]["child_id"].to_list() == ["7", None, "8"]
    assert result.quarantine.height == 0


def test_float_text_columns_keep_fractions_and_huge_values(tmp_path):
    path = folder(tmp_path, "quotes") / "q.parquet"
    symbols = pl.Series("symbol", [7.5, 1e20, -3.0])
    frame = pl.DataFrame(_quotes_table({}, bid=1.5).slice(0, 1))
    pl.concat([frame] * 3).with_columns(symbols).write_parquet(path)
    assert read_table(tmp_path, "quotes", DAY)["symbol"].to_list() == ["7.5", "1e+20", "-3"]


# 8. Nested JSON in a text column --------------------------------------------------------------


def test_jsonl_nested_value_in_a_text_column_is_a_bad_value(tmp_path):
    rest = BASE.replace('"symbol":"AAPL",', "")
    lines = [
        f'{{{rest},"bid_px":1,"symbol":{{"ticker":"AAPL"}}}}',
        f'{{{rest},"bid_px":1,"symbol": ["AAPL"]}}',
        f'{{{rest},"bid_px":1,"symbol":"{{looks like json}}"}}',
    ]
    (folder(tmp_path, "quotes") / "q.jsonl").write_text("\n".join(lines) + "\n")
    df = read_table(tmp_path, "quotes", DAY)
    assert df["symbol"].to_list() == [None, None, "{looks like json}"]
    assert df["_reasons"].to_list() == [["bad_value:symbol"], ["bad_value:symbol"], []]
    assert "__nested__:symbol" not in df.columns
    provenance = df.select(source_file="_source_file", source_row="_source_row")
    assert original_rows(tmp_path, "quotes", provenance).to_list() == lines


# 9. CSV header naming a column twice; empty CSV ---------------------------------------------


def test_csv_header_naming_a_contract_column_twice_is_a_file_error(tmp_path):
    (folder(tmp_path, "quotes") / "q.csv").write_text(f"{HEADER},bid_px\n{ROW},9\n")
    with pytest.raises(LandingError, match=r"q\.csv: column\(s\) \['bid_px'\] appear more"):
        read_table(tmp_path, "quotes", DAY)


@pytest.mark.parametrize("content", [b"", b"\n", b"\n\n"])
def test_empty_csv_has_no_rows_like_an_empty_jsonl(tmp_path, content):
    land(tmp_path, "quotes", good_rows()["quotes"], "parquet", name="a_good")
    (folder(tmp_path, "quotes") / "empty.csv").write_bytes(content)
    (folder(tmp_path, "quotes") / "empty.jsonl").write_bytes(content)
    assert read_table(tmp_path, "quotes", DAY).height == 3
    assert count_landed_rows(tmp_path, "quotes", DAY) == 3
