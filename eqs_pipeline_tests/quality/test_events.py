"""ExecutionQualityEvent records built from `quality.order_quality`.

One event per order; the envelope columns match the order; the JSON payload parses and every
field equals the order_quality row it came from; event_id is stable across runs (and does not
depend on the emission instant), so consumers can de-duplicate re-runs.
"""

from __future__ import annotations

import datetime as dt
import json

import polars as pl
import pytest

from eqs_pipeline.core.settings import QualitySettings
from eqs_pipeline.quality.events import EVENT_TYPE, PAYLOAD_FIELDS, SCHEMA_VERSION
from eqs_pipeline.quality.events import execution_quality_events as events
from eqs_pipeline_tests.quality.conftest import DAY, fill, order, quote, run_orders, trade

EMITTED = dt.datetime(2024, 3, 5, 6, 0, tzinfo=dt.UTC)


def _order_quality(settings: QualitySettings | None = None) -> pl.DataFrame:
    """Four orders covering filled, partial, unfilled-with-end and unfilled-without-end."""
    quotes = [quote(0, 99.99, 100.01), quote(30, 100.01, 100.03), quote(90, 100.0, 100.02)]
    orders = [
        order("A", "BUY", 200, 0, end=60),
        order("B", "SELL_SHORT", 300, 5),
        order("C", "SELL", 100, 10, end=40),
        order("D", "BUY", 100, 20),
    ]
    fills = [
        fill("F1", "A", 10, 200, 100.01, fee=0.4),
        fill("F2", "B", 12, 100, 99.99, "ADD", -0.1),
        fill("F3", "B", 31, 50, 100.00),
    ]
    trades = [trade(10, 100.01, 500), trade(31, 100.0, 400)]
    return run_orders(orders, fills, quotes, trades, settings=settings)


def _events(oq: pl.DataFrame, emitted: dt.datetime = EMITTED) -> pl.DataFrame:
    return events(oq.lazy(), pl.lit(emitted, dtype=pl.Datetime("us", "UTC"))).collect()


def test_one_event_per_order() -> None:
    oq = _order_quality()
    ev = _events(oq)
    assert ev.height == oq.height == 4
    assert sorted(ev["order_id"]) == sorted(oq["order_id"])
    assert ev["event_id"].n_unique() == 4
    assert set(ev["event_type"]) == {EVENT_TYPE}
    assert set(ev["schema_version"]) == {SCHEMA_VERSION}
    assert ev["emitted_at"].to_list() == [EMITTED] * 4


def test_envelope_matches_the_order() -> None:
    oq = _order_quality()
    ev = _events(oq).join(oq, on="order_id", suffix="_oq")
    for r in ev.to_dicts():
        assert r["trade_date"] == r["trade_date_oq"]
        assert r["symbol"] == r["symbol_oq"]
        # the event instant is the order's end, else its arrival
        assert r["event_ts"] == (r["order_end_ts"] or r["arrival_ts"])


@pytest.mark.parametrize("order_id", ["A", "B", "C", "D"])
def test_payload_parses_and_equals_the_row(order_id: str) -> None:
    oq = _order_quality()
    ev = _events(oq).filter(pl.col("order_id") == order_id)
    row = oq.filter(pl.col("order_id") == order_id).to_dicts()[0]
    payload = json.loads(ev["payload"].item())
    assert payload["event_type"] == EVENT_TYPE
    assert payload["schema_version"] == SCHEMA_VERSION
    assert payload["trade_date"] == row["trade_date"].isoformat()
    event_ts = row["order_end_ts"] or row["arrival_ts"]
    assert dt.datetime.fromisoformat(payload["event_ts"]) == event_ts
    fields = [c for c in PAYLOAD_FIELDS if c in oq.columns]
    assert "implementation_shortfall_bps" in fields and "quality_grade" in fields
    for c in fields:
        # exact: JSON floats round-trip, nulls stay null
        assert payload[c] == row[c], c
    assert set(payload) == {"event_type", "schema_version", "trade_date", "event_ts", *fields}


def test_payload_reversion_follows_the_configured_horizon() -> None:
    """`reversion_horizon_s` renames the table's column; the payload carries it by that name."""
    oq = _order_quality(QualitySettings(reversion_horizon_s=60))
    assert "reversion_60s_bps" in oq.columns and "reversion_300s_bps" not in oq.columns
    ev = _events(oq).filter(pl.col("order_id") == "A")
    payload = json.loads(ev["payload"].item())
    row = oq.filter(pl.col("order_id") == "A").row(0, named=True)
    assert row["reversion_60s_bps"] is not None
    assert payload["reversion_60s_bps"] == row["reversion_60s_bps"]
    assert not any(k.startswith("reversion_") and k != "reversion_60s_bps" for k in payload)


def test_event_id_tells_the_same_order_id_on_two_dates_apart() -> None:
    """Order ids are unique per trade date only (docs/INGESTION.md): the same order_id on two
    dates is two orders, with two event ids (consumers de-duplicate on event_id)."""
    oq = _order_quality()
    later = DAY + dt.timedelta(days=1)
    ev = _events(pl.concat([oq, oq.with_columns(trade_date=pl.lit(later))]))
    assert ev.height == 2 * oq.height and ev["event_id"].n_unique() == ev.height
    a = ev.filter(pl.col("order_id") == "A").sort("trade_date")["event_id"].to_list()
    assert a == [
        f"eqe:{DAY.isoformat()}:A:{SCHEMA_VERSION}",
        f"eqe:{later.isoformat()}:A:{SCHEMA_VERSION}",
    ]


def test_payload_keeps_nulls_as_null() -> None:
    """Order D has no fills and no end: its cost figures are null in the payload, not 0."""
    payload = json.loads(
        _events(_order_quality()).filter(pl.col("order_id") == "D")["payload"].item()
    )
    assert payload["implementation_shortfall_bps"] is None
    assert payload["avg_px"] is None
    assert payload["status"] == "unfilled"


def test_event_id_is_stable_across_runs() -> None:
    first = _events(_order_quality())
    again = _events(_order_quality(), emitted=EMITTED + dt.timedelta(hours=3))
    ids = dict(zip(first["order_id"], first["event_id"], strict=True))
    assert ids == dict(zip(again["order_id"], again["event_id"], strict=True))
    assert ids["A"] == f"eqe:{DAY.isoformat()}:A:{SCHEMA_VERSION}"
    # the payload of a re-run is the same too (emission time lives outside it)
    assert (
        first.sort("order_id")["payload"].to_list() == again.sort("order_id")["payload"].to_list()
    )
