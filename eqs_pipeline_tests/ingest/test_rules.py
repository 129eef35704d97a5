"""Row rules: every bad input lands in quarantine with exactly its reasons; good rows are staged."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from eqs_pipeline.core.contract import CONTRACT
from eqs_pipeline.core.settings import IngestSettings
from eqs_pipeline.ingest import (
    IngestResult,
    conservation_report,
    count_landed_rows,
    read_table,
    validate_instruments,
    validate_partition,
)
from eqs_pipeline.ingest.rules import PARTITION_TABLES
from eqs_pipeline_tests.ingest.builders import (
    DAY,
    at,
    extra_row,
    good_rows,
    ingest_day,
    ingest_landed,
    land,
    land_day,
)


def _row_id(table: str, row_json: str, source_row: int) -> str:
    key = CONTRACT[table].key
    return json.loads(row_json)[key[0]] if key else f"row{source_row}"


def quarantined(result: IngestResult, table: str) -> dict[str, list[str]]:
    """Quarantined rows of `table`: key (or row<n> for keyless tables) -> reasons."""
    q = result.quarantine.filter(pl.col("source_table") == table)
    return {
        _row_id(table, r["row_json"], r["source_row"]): r["reasons"]
        for r in q.iter_rows(named=True)
    }


def staged_ids(result: IngestResult, table: str) -> list[str]:
    key = CONTRACT[table].key
    staged = result.staged[table]
    return staged[key[0]].to_list() if key else [f"row{i + 1}" for i in range(staged.height)]


def test_a_good_day_is_staged_whole(tmp_path):
    result = ingest_day(tmp_path)
    assert result.quarantine.height == 0
    for table, rows in good_rows().items():
        if table != "instruments":
            assert result.staged[table].height == len(rows), table
    # The locked quote (bid == ask) is allowed.
    assert result.staged["quotes"].filter(pl.col("bid_px") == pl.col("ask_px")).height == 1
    orders = result.staged["orders"]
    assert orders["trade_date"].to_list() == [DAY, DAY]
    assert orders["source_file"].to_list() == ["orders/date=2024-01-02/part.csv"] * 2
    assert orders["arrival_ts"].to_list() == [at(14, 30), at(14, 31)]


CASES: list[tuple[str, dict[str, Any], list[str]]] = [
    ("orders", {"algo": None}, ["missing:algo"]),
    ("orders", {"algo": "   "}, ["missing:algo"]),
    ("orders", {"order_qty": 0.0}, ["non_positive:order_qty"]),
    ("orders", {"order_qty": "lots"}, ["bad_value:order_qty"]),
    ("orders", {"arrival_ts": "soon+00:00"}, ["bad_value:arrival_ts"]),
    (
        "orders",
        {"order_qty": -5.0, "side": "HOLD"},
        ["non_positive:order_qty", "unknown_value:side"],
    ),
    ("orders", {"side": "buy"}, ["unknown_value:side"]),
    ("orders", {"order_type": "STOP"}, ["unknown_value:order_type"]),
    ("orders", {"urgency": "URGENT"}, ["unknown_value:urgency"]),
    ("orders", {"target_participation": 0.0}, ["non_positive:target_participation"]),
    ("orders", {"allocation": "lottery"}, ["unknown_value:allocation"]),
    ("orders", {"allocation": "Wheel"}, ["unknown_value:allocation"]),
    ("orders", {"allocation": "wheel", "allocation_prob": 0.0}, ["allocation_prob_out_of_range"]),
    ("orders", {"allocation": "wheel", "allocation_prob": -0.3}, ["allocation_prob_out_of_range"]),
    ("orders", {"allocation": "wheel", "allocation_prob": 1.25}, ["allocation_prob_out_of_range"]),
    ("orders", {"allocation_prob": "half"}, ["bad_value:allocation_prob"]),
    ("orders", {"order_type": "LIMIT", "limit_price": None}, ["limit_without_price"]),
    ("orders", {"order_type": "LIMIT", "limit_price": "x"}, ["bad_value:limit_price"]),
    ("orders", {"end_ts": at(14, 30, 59)}, ["end_before_arrival"]),
    ("orders", {"symbol": "TSLA"}, ["unknown_symbol"]),
    ("child_orders", {"order_id": "O9"}, ["unknown_order"]),
    ("child_orders", {"order_id": None}, ["missing:order_id"]),
    ("child_orders", {"sent_ts": at(14, 30, 59)}, ["before_arrival"]),
    ("child_orders", {"end_ts": at(14, 31, 0.5)}, ["end_before_sent"]),
    ("child_orders", {"tif": "GTC"}, ["unknown_value:tif"]),
    ("child_orders", {"order_type": "STOP"}, ["unknown_value:order_type"]),
    ("child_orders", {"qty": 0.0, "venue": None}, ["missing:venue", "non_positive:qty"]),
    ("executions", {"order_id": "O9", "child_id": None}, ["unknown_order"]),
    ("executions", {"order_id": "O9"}, ["unknown_order", "child_order_mismatch"]),
    ("executions", {"child_id": "C9"}, ["unknown_child"]),
    ("executions", {"child_id": "C2"}, ["child_order_mismatch"]),
    ("executions", {"symbol": "MSFT"}, ["symbol_mismatch"]),
    ("executions", {"exec_ts": at(14, 29, 59.5)}, ["before_arrival"]),
    ("executions", {"price": 250.0}, ["bad_print"]),
    ("executions", {"price": 0.0}, ["non_positive:price", "bad_print"]),
    ("executions", {"liquidity_flag": "MAKER"}, ["unknown_value:liquidity_flag"]),
    ("executions", {"qty": 600.0}, ["overfill", "child_overfill"]),  # O1 and C1
    ("executions", {"qty": 400.0}, ["child_overfill"]),  # C1: 300 + 400 > 600; O1: 900 <= 1000
    ("executions", {"exec_ts": None}, ["missing:exec_ts"]),
    ("quotes", {"bid_px": 190.01}, ["crossed_quote"]),
    ("quotes", {"bid_sz": 0.0}, ["non_positive:bid_sz"]),
    ("quotes", {"ask_px": None}, ["missing:ask_px"]),
    ("quotes", {"symbol": None, "bid_px": -1.0}, ["missing:symbol", "non_positive:bid_px"]),
    ("market_trades", {"price": -1.0}, ["non_positive:price"]),
    ("market_trades", {"size": None, "ts": "noon+01:00"}, ["bad_value:ts", "missing:size"]),
    # Identifiers: a quoted newline (a CSV field spanning lines), a NUL, a right-to-left
    # override that makes a value print as another, and an over-long value.
    ("child_orders", {"venue": "ARCX\nXNAS"}, ["bad_text:venue"]),
    ("orders", {"broker": "BRK\x001"}, ["bad_text:broker"]),
    ("orders", {"trader": "T\u202e1KRB"}, ["bad_text:trader"]),
    ("orders", {"account": "A" * 100_000}, ["bad_text:account"]),
    ("market_trades", {"venue": "XN\x1b[2JAS"}, ["bad_text:venue"]),  # a terminal escape
    # Plausibility: sizes against ADV (AAPL 5e7, MSFT 2e7) and lot, prices against the day's
    # quotes, fees against notional.
    ("orders", {"order_qty": 1e308}, ["implausible_size:order_qty"]),
    ("orders", {"order_type": "LIMIT", "limit_price": 1e300}, ["implausible_price:limit_price"]),
    ("child_orders", {"qty": 1e12}, ["implausible_size:qty"]),  # MSFT, by its order's symbol
    (
        "child_orders",
        {"order_type": "LIMIT", "limit_price": 0.4},
        ["implausible_price:limit_price"],
    ),
    ("executions", {"qty": 1e-300}, ["implausible_fee", "implausible_size:qty"]),
    ("executions", {"fee": 1e300}, ["implausible_fee"]),
    ("executions", {"fee": -1e300}, ["implausible_fee"]),
    ("executions", {"price": 1e300}, ["bad_print", "implausible_price:price"]),
    ("quotes", {"bid_sz": 1e300}, ["implausible_size:bid_sz"]),
    ("quotes", {"ask_sz": 1e-300}, ["implausible_size:ask_sz"]),
    ("quotes", {"bid_px": 0.001}, ["implausible_price:bid_px"]),
    ("quotes", {"ask_px": 1e300}, ["implausible_price:ask_px"]),
    ("market_trades", {"size": 1e300}, ["implausible_size:size"]),
    ("market_trades", {"price": 1e300}, ["implausible_price:price"]),
    # Off the folder's trade date (2024-01-02 on the New York clock, 6 h either side).
    ("orders", {"arrival_ts": at(14, 31) + timedelta(days=3)}, ["off_date:arrival_ts"]),
    ("child_orders", {"sent_ts": at(14, 31, 1) + timedelta(days=3)}, ["off_date:sent_ts"]),
    ("executions", {"exec_ts": at(14, 30, 4) + timedelta(days=3)}, ["off_date:exec_ts"]),
    ("quotes", {"ts": at(14, 35) - timedelta(days=400)}, ["off_date:ts"]),
    ("market_trades", {"ts": at(14, 35) + timedelta(days=1)}, ["off_date:ts"]),
]


@pytest.mark.parametrize(("table", "changes", "expected"), CASES)
def test_a_bad_row_is_quarantined_with_exactly_its_reasons(tmp_path, table, changes, expected):
    rows = good_rows()
    bad = {**extra_row(table), **changes}
    rows[table].append(bad)
    result = ingest_day(tmp_path, rows)

    bad_id = bad[CONTRACT[table].key[0]] if CONTRACT[table].key else f"row{len(rows[table])}"
    assert quarantined(result, table) == {bad_id: expected}
    assert result.quarantine.height == 1  # nothing else was dragged along
    good = good_rows()[table]
    assert result.staged[table].height == len(good)
    if CONTRACT[table].key:
        assert bad_id not in staged_ids(result, table)
    q = result.quarantine.row(0, named=True)
    assert q["trade_date"] == DAY
    assert q["source_file"].startswith(f"{table}/date=2024-01-02/part.")
    assert q["source_row"] == len(rows[table])


def test_the_extra_rows_are_good_when_unbroken(tmp_path):
    """The CASES above break one rule of an otherwise good row; check the row is good."""
    rows = good_rows()
    for table in PARTITION_TABLES:
        rows[table].append(extra_row(table))
    result = ingest_day(tmp_path, rows)
    assert result.quarantine.height == 0


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_the_allocation_columns_are_staged_as_landed(tmp_path, fmt):
    """A wheel order at the edge of the range (prob 1), a wheel order without its probability
    (the arms then count as equally likely) and a discretionary order with one (kept, ignored)
    are all staged, in every format, beside orders of a file without the columns."""
    rows = good_rows()
    base = {**extra_row("orders"), "order_id": "O3", "allocation": "wheel"}
    landed = [
        {**base, "allocation_prob": 1.0},
        {**base, "order_id": "O4", "allocation_prob": None},
        {**base, "order_id": "O5", "allocation": "discretionary", "allocation_prob": 0.25},
        {**base, "order_id": "O6", "allocation_prob": 0.3},
    ]
    land_day(tmp_path, rows)
    land(tmp_path, "orders", landed, fmt, name="wheel")
    result = ingest_landed(tmp_path)
    assert result.quarantine.height == 0
    staged = result.staged["orders"].sort("order_id")
    assert staged["order_id"].to_list() == ["O1", "O2", "O3", "O4", "O5", "O6"]
    wheel, chosen = "wheel", "discretionary"
    assert staged["allocation"].to_list() == [None, None, wheel, wheel, chosen, wheel]
    assert staged["allocation_prob"].to_list() == [None, None, 1.0, None, 0.25, 0.3]


def test_unknown_symbol_only_applies_with_instruments(tmp_path):
    rows = good_rows()
    rows["orders"].append({**extra_row("orders"), "symbol": "TSLA"})
    result = ingest_day(tmp_path, rows, with_instruments=False)
    assert "O3" in staged_ids(result, "orders")
    assert result.quarantine.height == 0


def test_instrument_rules(tmp_path):
    rows = good_rows()["instruments"] + [
        {"symbol": "TSLA", "currency": None, "tick_size": 0.0, "adv_shares": 1e6},
        {
            "symbol": "NVDA",
            "currency": "USD",
            "tick_size": 0.01,
            "adv_shares": 1e6,
            "lot_size": 1.5,
        },
        {"symbol": "AMD", "currency": "USD", "tick_size": 0.01, "adv_shares": 1e6, "lot_size": 100},
    ]
    land(tmp_path, "instruments", rows, "csv")
    result = validate_instruments(read_table(tmp_path, "instruments", None), landing=tmp_path)
    assert quarantined(result, "instruments") == {
        "TSLA": ["missing:currency", "non_positive:tick_size"],
        "NVDA": ["bad_value:lot_size"],
    }
    staged = result.staged["instruments"]
    assert staged["symbol"].to_list() == ["AAPL", "MSFT", "AMD"]
    assert staged["lot_size"].to_list() == [None, None, 100]
    assert "trade_date" not in staged.columns
    assert result.quarantine["trade_date"].to_list() == [None, None]


def test_children_and_fills_of_a_quarantined_order_are_unknown(tmp_path):
    rows = good_rows()
    rows["orders"][1]["order_qty"] = 0.0  # O2 is bad, so C2 and E3 have no good parent
    result = ingest_day(tmp_path, rows)
    assert quarantined(result, "orders") == {"O2": ["non_positive:order_qty"]}
    assert quarantined(result, "child_orders") == {"C2": ["unknown_order"]}
    # C2 is not staged either, so E3's child is unknown too.
    assert quarantined(result, "executions") == {"E3": ["unknown_order", "unknown_child"]}
    assert staged_ids(result, "executions") == ["E1", "E2"]


def test_bad_print_uses_the_last_good_quote_strictly_before_the_fill(tmp_path):
    rows = good_rows()
    rows["executions"].append(extra_row("executions"))  # E4, 14:30:04 at 190.0
    rows["quotes"] += [
        # Crossed, so quarantined: its mid (250) must not judge E4.
        {"symbol": "AAPL", "ts": at(14, 30, 3.5), "bid_px": 300.0, "bid_sz": 1.0,
         "ask_px": 200.0, "ask_sz": 1.0},
        # At exactly exec_ts: not prevailing yet.
        {"symbol": "AAPL", "ts": at(14, 30, 4), "bid_px": 249.0, "bid_sz": 1.0,
         "ask_px": 251.0, "ask_sz": 1.0},
    ]  # fmt: skip
    # A MSFT fill before any MSFT quote: the rule cannot apply, however wild the price.
    rows["orders"].append({**extra_row("orders"), "order_id": "O4", "arrival_ts": at(14, 20)})
    rows["executions"].append(
        {**rows["executions"][2], "exec_id": "E5", "order_id": "O4", "child_id": None,
         "exec_ts": at(14, 25), "qty": 10.0, "price": 999.0}
    )  # fmt: skip
    result = ingest_day(tmp_path, rows)
    assert quarantined(result, "quotes") == {"row4": ["crossed_quote"]}
    assert quarantined(result, "executions") == {}
    assert {"E4", "E5"} <= set(staged_ids(result, "executions"))

    # With a tighter tolerance E4 (190.0 vs mid 189.9, 0.053%) becomes a bad print.
    tight = ingest_landed(tmp_path, settings=IngestSettings(max_price_deviation=0.0005))
    assert quarantined(tight, "executions") == {"E4": ["bad_print"]}


@pytest.mark.parametrize(("wild_first", "expected"), [(True, {}), (False, {"E4": ["bad_print"]})])
def test_of_quotes_with_the_same_ts_the_last_landed_prevails(tmp_path, wild_first, expected):
    rows = good_rows()
    rows["executions"].append(extra_row("executions"))  # E4, 14:30:04 at 190.0
    sane = {**rows["quotes"][0], "ts": at(14, 30, 3)}
    wild = {**sane, "bid_px": 249.0, "ask_px": 251.0}
    rows["quotes"] += [wild, sane] if wild_first else [sane, wild]
    result = ingest_day(tmp_path, rows)
    assert quarantined(result, "executions") == expected


def test_overfill_flags_the_crossing_fill_and_all_after_over_good_fills_only(tmp_path):
    rows = good_rows()  # O1: 1000 shares; E1 300 and E2 200 are good
    fill = {**extra_row("executions"), "child_id": None}
    rows["executions"] += [
        # Broken otherwise (price 0); its huge quantity must not count towards the order.
        {**fill, "exec_id": "E3x", "exec_ts": at(14, 30, 3.5), "qty": 10_000.0, "price": 0.0},
        {**fill, "exec_id": "E4", "exec_ts": at(14, 30, 4), "qty": 400.0},  # cum 900
        # Same instant, landed out of order: exec_id breaks the tie, E5a first.
        {**fill, "exec_id": "E5b", "exec_ts": at(14, 30, 5), "qty": 100.0},  # cum 1100
        {**fill, "exec_id": "E5a", "exec_ts": at(14, 30, 5), "qty": 100.0},  # cum 1000
        {**fill, "exec_id": "E6", "exec_ts": at(14, 30, 6), "qty": 1.0},  # after: cum 1101
    ]
    result = ingest_day(tmp_path, rows)
    assert quarantined(result, "executions") == {
        "E3x": ["non_positive:price", "bad_print"],
        "E5b": ["overfill"],
        "E6": ["overfill"],
    }
    assert staged_ids(result, "executions") == ["E1", "E2", "E3", "E4", "E5a"]


def test_overfill_tolerates_float_sums(tmp_path):
    rows = good_rows()
    rows["orders"][0]["order_qty"] = 0.3
    rows["executions"][0]["qty"] = 0.1
    rows["executions"][1]["qty"] = 0.2  # 0.1 + 0.2 = 0.30000000000000004
    result = ingest_day(tmp_path, rows)
    assert result.quarantine.height == 0


def test_overfill_sums_every_order_and_child_order_on_its_own(tmp_path):
    rows = good_rows()  # O1: 1000 (C1: 600, E1 300 and E2 200); O2: 500 (C2: 500, E3 500)
    rows["child_orders"].append({**rows["child_orders"][0], "child_id": "C4", "qty": 300.0})
    fill = {**extra_row("executions"), "child_id": "C4"}
    rows["executions"] += [
        {**fill, "exec_id": "E4", "exec_ts": at(14, 30, 4), "qty": 250.0},  # O1 750, C4 250
        # Landed before E6 but at the same instant: E6 first. O1 1150: overfilled.
        {**fill, "exec_id": "E7", "child_id": "C1", "exec_ts": at(14, 30, 5), "qty": 300.0},
        {**fill, "exec_id": "E6", "exec_ts": at(14, 30, 5), "qty": 100.0},  # C4 350 > 300
        {**rows["executions"][2], "exec_id": "E5", "exec_ts": at(14, 31, 6), "qty": 1.0},
    ]
    result = ingest_day(tmp_path, rows)
    assert quarantined(result, "executions") == {
        "E5": ["overfill", "child_overfill"],  # O2 and C2: 501 > 500
        "E6": ["child_overfill"],  # its quantity still counts towards O1
        "E7": ["overfill"],  # C1: 600, not over
    }
    assert staged_ids(result, "executions") == ["E1", "E2", "E3", "E4"]


def test_identical_duplicates_collapse_and_are_counted(tmp_path):
    land_day(tmp_path)
    e1 = good_rows()["executions"][0]
    land(tmp_path, "executions", [e1, e1], "csv", name="resent")  # same fill twice more
    result = ingest_landed(tmp_path)
    assert result.quarantine.height == 0
    assert staged_ids(result, "executions") == ["E1", "E2", "E3"]
    counts = result.counts.filter(pl.col("source_table") == "executions").sort("source_file")
    assert counts.select(
        "source_file", "landed_rows", "staged_rows", "collapsed_duplicates"
    ).rows() == [
        ("executions/date=2024-01-02/part.parquet", 3, 3, 0),
        ("executions/date=2024-01-02/resent.csv", 2, 0, 2),
    ]


def test_conflicting_duplicates_are_all_quarantined(tmp_path):
    land_day(tmp_path)
    o2 = good_rows()["orders"][1]
    land(tmp_path, "orders", [o2, {**o2, "broker": "OTHER"}], "jsonl", name="amend")
    result = ingest_landed(tmp_path)
    q = result.quarantine.filter(pl.col("source_table") == "orders")
    assert q["reasons"].to_list() == [["duplicate_key_conflict"]] * 3
    assert sorted(q["source_file"].str.split("/").list.last().to_list()) == [
        "amend.jsonl", "amend.jsonl", "part.csv"
    ]  # fmt: skip
    assert staged_ids(result, "orders") == ["O1"]
    assert (
        result.counts.filter(pl.col("source_table") == "orders")["collapsed_duplicates"].sum() == 0
    )
    # O2 is not a good order, so its child and fill cannot be staged either.
    assert quarantined(result, "child_orders") == {"C2": ["unknown_order"]}
    assert quarantined(result, "executions") == {"E3": ["unknown_order", "unknown_child"]}


def test_a_conflicting_duplicate_keeps_its_other_reasons(tmp_path):
    rows = good_rows()
    rows["child_orders"].append({**rows["child_orders"][0], "qty": -1.0})
    result = ingest_day(tmp_path, rows)
    reasons = result.quarantine.filter(pl.col("source_table") == "child_orders")["reasons"]
    assert sorted(sorted(r) for r in reasons.to_list()) == [
        ["duplicate_key_conflict"],
        ["duplicate_key_conflict", "non_positive:qty"],
    ]


def _conservation(landing: Path, result: IngestResult) -> pl.DataFrame:
    landed = {t: count_landed_rows(landing, t, DAY) for t in PARTITION_TABLES}
    return conservation_report(result, landed, DAY)


def test_conservation_holds_for_every_table_with_bad_rows_and_duplicates(tmp_path):
    rows = good_rows()
    for table, changes, _ in CASES:
        key = CONTRACT[table].key
        suffix = {key[0]: f"{extra_row(table)[key[0]]}-{len(rows[table])}"} if key else {}
        rows[table].append({**extra_row(table), **changes, **suffix})
    rows["executions"] += [rows["executions"][0]] * 3  # identical
    rows["quotes"] += [rows["quotes"][0]] * 2  # keyless: identical quotes are both kept
    land_day(tmp_path, rows)
    land(tmp_path, "orders", [rows["orders"][0]], "jsonl", name="again")
    result = ingest_landed(tmp_path)

    report = _conservation(tmp_path, result)
    assert report["holds"].all(), report
    totals = dict(zip(report["source_table"], report["landed_rows"], strict=True))
    assert totals == {t: len(rows[t]) + (t == "orders") for t in PARTITION_TABLES}
    collapsed = dict(zip(report["source_table"], report["collapsed_duplicates"], strict=True))
    assert collapsed["executions"] == 3
    assert collapsed["orders"] == 1
    assert collapsed["quotes"] == 0
    every_code = {code for _, _, codes in CASES for code in codes}
    assert every_code == set(result.quarantine["reasons"].explode().to_list())
    # Per file, too.
    per_file = result.counts.with_columns(
        ok=pl.col("landed_rows")
        == pl.col("staged_rows") + pl.col("quarantined_rows") + pl.col("collapsed_duplicates")
    )
    assert per_file["ok"].all()
    assert per_file["trade_date"].unique().to_list() == [DAY]


def test_conservation_report_catches_a_lost_row(tmp_path):
    result = ingest_day(tmp_path)
    staged = dict(result.staged)
    staged["quotes"] = staged["quotes"].head(2)
    lossy = IngestResult(staged, result.quarantine, result.counts)
    report = _conservation(tmp_path, lossy)
    assert report.filter(pl.col("holds").not_())["source_table"].to_list() == ["quotes"]


def test_validate_partition_rejects_frames_that_are_not_from_read_table():
    with pytest.raises(ValueError, match="lacks"):
        validate_partition({"quotes": pl.DataFrame({"symbol": ["A"]})}, DAY, None, landing=Path())
    with pytest.raises(ValueError, match="instruments"):
        validate_partition({"instruments": pl.DataFrame()}, DAY, None, landing=Path())


def test_a_day_without_repeated_keys_skips_the_duplicate_pass_with_the_same_result(tmp_path):
    """Keys that never repeat (rows without a key aside, even identical ones) take the short
    path of `_collapse_duplicates`; it must give what the full pass gives."""
    from eqs_pipeline.ingest.rules import _collapse_duplicates, _collapse_repeated_keys

    rows = good_rows()
    keyless = {**extra_row("executions"), "exec_id": None}
    rows["executions"] = [*rows["executions"], keyless, keyless]
    rows["orders"] = [*rows["orders"], {**extra_row("orders"), "order_id": None}]
    landing = land_day(tmp_path, rows)
    for table in ("orders", "child_orders", "executions"):
        raw = read_table(landing, table, DAY)
        kept, collapsed = _collapse_duplicates(raw, CONTRACT[table])
        full_kept, full_collapsed = _collapse_repeated_keys(raw, CONTRACT[table])
        assert kept.equals(full_kept) and kept.height == raw.height
        assert collapsed.equals(full_collapsed) and collapsed.height == 0


@pytest.mark.parametrize("chunk_fills", [1, 150])
def test_prevailing_mids_looked_up_in_symbol_ranges_stage_the_same_rows(tmp_path, chunk_fills):
    """`IngestSettings.chunk_fills` below the date's fills: the bad-print rule looks up the
    fills' prevailing mids one symbol range at a time, and stages and quarantines the same
    rows as the date looked up whole (bad prints in several symbols, read as a table each when
    the rules need it)."""
    from eqs_pipeline.ingest import discover_trade_dates
    from eqs_pipeline.simulate import SimulationConfig
    from eqs_pipeline_tests.conftest import simulate_small

    landing = simulate_small(tmp_path, SimulationConfig(days=1, symbols=6, orders_per_day=60))
    (day,) = discover_trade_dates(landing)
    instruments = validate_instruments(read_table(landing, "instruments", None), landing=landing)
    raw = {t: read_table(landing, t, day) for t in PARTITION_TABLES}
    # Every 7th fill printed at twice its price: a bad print against its prevailing mid.
    row = pl.int_range(pl.len())
    raw["executions"] = raw["executions"].with_columns(
        price=pl.when(row % 7 == 0)
        .then((pl.col("price").cast(pl.Float64) * 2).cast(raw["executions"].schema["price"]))
        .otherwise(pl.col("price"))
    )
    assert raw["executions"]["symbol"].n_unique() > 3 and raw["executions"].height > 2 * 150
    staged = instruments.staged["instruments"]
    whole = validate_partition(raw, day, staged, landing=landing)
    ranged = validate_partition(
        raw.__getitem__, day, staged, IngestSettings(chunk_fills=chunk_fills), landing=landing
    )
    assert (whole.quarantine["reasons"].list.contains("bad_print")).sum() > 3
    for table in PARTITION_TABLES:
        assert_frame_equal(ranged.staged[table], whole.staged[table], check_exact=True)
    assert_frame_equal(ranged.quarantine, whole.quarantine, check_exact=True)
    assert_frame_equal(ranged.counts, whole.counts, check_exact=True)
