"""Tier 2: the venue aggregations and the mix adjustment against hand-computed values."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from eqs_pipeline.core.settings import HORIZONS_S
from eqs_pipeline.simulate import SimulationConfig
from eqs_pipeline.stats import adjusted_means
from eqs_pipeline.venues.daily import (
    ALL,
    DIMENSIONS,
    _columns,
    venue_daily,
    venue_daily_buckets,
    venue_sums,
)
from eqs_pipeline.venues.frames import FILL_COLUMNS, FILL_INPUTS, fill_inputs, venue_frames
from eqs_pipeline.venues.settings import VenueSettings
from eqs_pipeline_tests.venues.truth import simulated_desk

DAY = dt.date(2024, 3, 4)
T0 = dt.datetime(2024, 3, 4, 14, 30, tzinfo=dt.UTC)


def _ms(ms: float) -> dt.datetime:
    return T0 + dt.timedelta(microseconds=round(ms * 1000))


def _fill(exec_id, child_id, venue, flag, qty, eff, quoted, pi, position, m60, fee, t_ms):
    row = {
        "exec_id": exec_id, "trade_date": DAY, "order_id": "O1", "child_id": child_id,
        "symbol": "XYZ", "venue": venue, "liquidity_flag": flag, "exec_ts": _ms(t_ms),
        "qty": qty, "price": 10.0, "notional": qty * 10.0, "fee": fee,
        "fee_bps": None if fee is None else fee / (qty * 10.0) * 1e4,
        "quoted_spread_bps": quoted, "effective_spread_bps": eff,
        "price_improvement_bps": pi, "quote_position": position,
    }  # fmt: skip
    for h in HORIZONS_S:
        row[f"markout_{h}s_bps"] = m60 if h == 60 else 0.0
        row[f"realized_spread_{h}s_bps"] = eff
        row[f"price_impact_{h}s_bps"] = 0.0
    return row


FILLS = pl.DataFrame(
    [
        # venue A: 100 sh at eff 2 / quoted 4, 300 sh at eff 4 / quoted 8; latency 1 ms and 3 ms
        _fill("E1", "C1", "A", "REMOVE", 100.0, 2.0, 4.0, 0.0, "at_quote", -1.0, 0.3, 1.0),
        _fill("E2", "C1", "A", "REMOVE", 300.0, 4.0, 8.0, 1.0, "improved", -3.0, None, 3.0),
        # venue B: one passive fill
        _fill("E3", "C3", "B", "ADD", 100.0, -4.0, 4.0, 4.0, "improved", 1.0, -0.2, 10.0),
    ]
)
CHILDREN = pl.DataFrame(
    {
        "child_id": ["C1", "C2", "C3"],
        "trade_date": [DAY] * 3,
        "order_id": ["O1"] * 3,
        "venue": ["A", "A", "B"],
        "sent_ts": [_ms(0), _ms(0), _ms(0)],
        "qty": [500.0, 100.0, 100.0],
        "order_type": ["LIMIT", "MARKET", "LIMIT"],
        "tif": ["IOC", "IOC", "DAY"],
        "end_ts": [None, None, _ms(30_000)],  # the DAY child rested 30 s
    }
)
ORDERS = pl.DataFrame(
    {
        "order_id": ["O1"],
        "trade_date": [DAY],
        "symbol": ["XYZ"],
        "size_pct_adv": [0.005],  # 0.5% ADV: medium
        "adv_shares": [1e6],
        "arrival_mid": [10.0],  # $10M dollar ADV: low
        "arrival_spread_bps": [12.0],  # normal
        "urgency": ["HIGH"],
    }
)


@pytest.fixture(scope="module")
def frames() -> tuple[pl.LazyFrame, pl.LazyFrame]:
    fills, children = venue_frames(FILLS, CHILDREN, ORDERS)
    fills, children = fills.lazy(), children.lazy()
    return fills, children


def test_venue_daily_hand_computed(frames) -> None:
    daily = venue_daily(*frames)
    a = daily.filter(pl.col("venue") == "A").row(0, named=True)
    b = daily.filter(pl.col("venue") == "B").row(0, named=True)
    assert a["fills"] == 2 and a["shares"] == 400.0 and a["notional"] == 4000.0
    assert a["flow_share"] == pytest.approx(0.8) and b["flow_share"] == pytest.approx(0.2)
    assert a["effective_spread_bps"] == pytest.approx((100 * 2 + 300 * 4) / 400)  # 3.5
    assert a["eq_ratio"] == pytest.approx((100 * 2 + 300 * 4) / (100 * 4 + 300 * 8))  # 0.5
    assert a["pct_improved"] == pytest.approx(0.75) and a["pct_at_quote"] == pytest.approx(0.25)
    assert a["pct_outside"] == 0.0
    assert a["price_improvement_bps"] == pytest.approx(0.75)
    # child fill rate: C1 executed 400 of 500, C2 nothing of 100
    assert a["child_orders"] == 2 and a["fill_rate"] == pytest.approx(400 / 600)
    assert b["fill_rate"] == pytest.approx(1.0)
    # latency over fills: 1 ms and 3 ms; linear p95 = 1 + 0.95 * 2
    assert a["latency_median_ms"] == pytest.approx(2.0)
    assert a["latency_p95_ms"] == pytest.approx(2.9)
    # net fee: only E1 has a fee, 0.3 on 1000 notional = 3 bps, share-weighted over known fees
    assert a["fee_bps"] == pytest.approx(3.0) and a["fees_paid"] == pytest.approx(0.3)
    assert b["rebates_received"] == pytest.approx(0.2) and b["fee_bps"] == pytest.approx(-2.0)
    # all-in = fee_bps - markout_60s (missing fee = 0): (100 * (3 + 1) + 300 * 3) / 400
    assert a["all_in_cost_bps"] == pytest.approx((100 * 4.0 + 300 * 3.0) / 400)
    assert b["all_in_cost_bps"] == pytest.approx(-2.0 - 1.0)


def test_buckets_and_breakdowns(frames) -> None:
    fills, children = frames
    f = fills.collect()
    assert set(f["size_bucket"]) == {"medium"} and set(f["liquidity_bucket"]) == {"low"}
    c = children.collect().sort("child_id")
    assert c["liquidity_flag"].to_list() == ["REMOVE", "REMOVE", "ADD"]
    buckets = venue_daily_buckets(fills, children)
    by_flag = buckets.filter(pl.col("breakdown") == "liquidity_flag")
    assert set(by_flag["size_bucket"]) == {"ALL"}
    a_remove = by_flag.filter((pl.col("venue") == "A") & (pl.col("liquidity_flag") == "REMOVE"))
    assert a_remove["effective_spread_bps"].item() == pytest.approx(3.5)
    # each venue is alone in its flag, so it has all of that flag's flow
    assert by_flag["flow_share"].to_list() == [1.0, 1.0]
    cells = buckets.filter(pl.col("breakdown") == "cell")
    assert cells["shares"].sum() == pytest.approx(500.0)


def test_mix_adjustment_removes_the_easy_flow_advantage() -> None:
    """A gets mostly cheap-cell flow, B mostly expensive; within each cell they are equal."""
    frame = pl.DataFrame(
        {
            "venue": ["A", "B", "A", "B"],
            "cell": ["easy", "easy", "hard", "hard"],
            "cost": [1.0, 1.0, 5.0, 5.0],
            "qty": [90.0, 10.0, 10.0, 90.0],
            "cluster": ["g1", "g2", "g3", "g4"],
        }
    )
    raw = adjusted_means(frame, "cost", cell=None).table.sort("venue")
    assert raw["estimate"].to_list() == pytest.approx([1.4, 4.6])
    adjusted = adjusted_means(frame, "cost").table.sort("venue")
    assert adjusted["estimate"].to_list() == pytest.approx([3.0, 3.0])


def test_cluster_robust_se_of_a_plain_mean() -> None:
    """One observation per cluster: CR1 equals the textbook standard error s / sqrt(n)."""
    frame = pl.DataFrame(
        {"venue": ["A"] * 4, "y": [1.0, 2.0, 3.0, 4.0], "qty": [1.0] * 4, "cluster": list("abcd")}
    )
    est = adjusted_means(frame, "y", cell=None)
    row = est.table.row(0, named=True)
    assert row["estimate"] == pytest.approx(2.5)
    assert row["se"] == pytest.approx(np.std([1, 2, 3, 4], ddof=1) / 2)
    assert row["ci_low"] < 2.5 < row["ci_high"]
    # fills of one cluster move together: two clusters of two identical fills have a wider SE
    paired = frame.with_columns(cluster=pl.Series(["a", "b", "a", "b"]))
    assert adjusted_means(paired, "y", cell=None).table["se"].item() < row["se"] * 2


def test_unidentified_venue_is_null_not_a_guess() -> None:
    frame = pl.DataFrame(
        {
            "venue": ["A", "B", "C"],
            "cell": ["x", "x", "y"],  # C shares no cell with A or B
            "y": [1.0, 2.0, 9.0],
            "qty": [1.0, 1.0, 1.0],
            "cluster": ["1", "2", "3"],
        }
    )
    table = adjusted_means(frame, "y").table.sort("venue")
    # A and B at the mix of their own (the largest) group; C is compared with nobody
    assert table["estimate"].head(2).to_list() == pytest.approx([1.0, 2.0])
    assert table["estimate"][2] is None


def test_venue_frames_edge_cases():
    """A fill without a child, a fill whose child was not landed, a child without fills, an
    order without buckets; and a duplicated child_id is an error, not doubled fills."""
    base = FILLS.row(0, named=True)
    fills = pl.DataFrame(
        [
            base,
            {**base, "exec_id": "E-NOCHILD", "child_id": None},
            {**base, "exec_id": "E-UNKNOWN", "child_id": "C-NOT-LANDED", "order_id": "O-NONE"},
        ],
        schema=FILLS.schema,
    )
    vf, vc = venue_frames(fills, CHILDREN, ORDERS)
    assert vf["exec_id"].to_list() == ["E1", "E-NOCHILD", "E-UNKNOWN"]
    assert vf["latency_ms"].to_list() == [1.0, None, None]
    assert vf["size_bucket"].to_list() == ["medium", "medium", "unknown"]
    assert vf["liquidity_bucket"].to_list() == ["low", "low", "unknown"]
    # Only E1 reaches a landed child (C1); C2 and C3 have no fills here.
    assert vc["child_id"].to_list() == ["C1", "C2", "C3"]
    assert vc["filled_qty"].to_list() == [100.0, 0.0, 0.0]
    assert vc["fill_rate"].to_list() == [0.2, 0.0, 0.0]
    assert vc["symbol"].to_list() == ["XYZ"] * 3
    assert vc["liquidity_flag"].to_list() == ["REMOVE", "REMOVE", "ADD"]
    with pytest.raises(ValueError, match="child_id more than once"):
        venue_frames(fills, pl.concat([CHILDREN, CHILDREN.head(1)]), ORDERS)


def test_a_child_without_its_order_is_a_symbol_day_cluster_of_its_own():
    """Ingestion quarantines children whose parent order is missing; in hand-made inputs such a
    child has no symbol, so no symbol-day: it is clustered alone (its order within its date)
    rather than with a null cluster, which crashed the scorecard's statistics."""
    orphan = CHILDREN.head(1).with_columns(child_id=pl.lit("C-ORPHAN"), order_id=pl.lit("O-NONE"))
    children = pl.concat([CHILDREN, orphan])
    _, kids = venue_frames(FILLS, children, ORDERS, VenueSettings(cluster="symbol_day"))
    assert kids["cluster"].to_list() == ["XYZ|2024-03-04"] * 3 + ["2024-03-04|O-NONE"]
    # Venue A: C1 and C2 (one symbol-day) and the orphan: two clusters, an interval.
    rates = adjusted_means(kids, "fill_rate", cell=None).table.sort("venue")
    assert rates["n"].to_list() == [3, 1] and rates["se"].to_list()[0] > 0


def test_an_over_filled_child_is_reported_not_clipped():
    """Ingestion quarantines fills past their child's routed quantity (`child_overfill`). If one
    gets through (hand-made inputs), its shares stay in the venue figures and the fill rate
    above 1 fails the venue tables' fill-rate check, instead of being clipped away."""
    from eqs_pipeline.defs.venues.checks import fill_rate_result

    extra = {**FILLS.row(2, named=True), "exec_id": "E4", "qty": 50.0, "notional": 500.0}
    fills = pl.concat([FILLS, pl.DataFrame([extra], schema=FILLS.schema)])
    _, children = venue_frames(fills, CHILDREN, ORDERS)
    assert children.filter(pl.col("child_id") == "C3")["fill_rate"].item() == 1.5
    daily = venue_daily(*venue_frames(fills, CHILDREN, ORDERS))
    b = daily.filter(pl.col("venue") == "B").row(0, named=True)
    assert b["executed_qty"] == 150.0 == b["shares"]  # every executed share counted
    check = fill_rate_result(dg.AssetKey(["venue", "venue_daily"]), daily, ["fill_rate"])
    assert not check.passed
    assert fill_rate_result(
        dg.AssetKey(["venue", "venue_daily"]),
        venue_daily(*venue_frames(FILLS, CHILDREN, ORDERS)),
        ["fill_rate"],
    ).passed


def test_breakdowns_added_up_from_cell_sums_equal_each_grouping_computed_from_the_fills():
    """`venue_daily_buckets` sums the fills' figures per cell once and adds them up per
    breakdown; every figure must equal the same grouping computed from the fills directly (the
    dimensions outside the grouping set to ALL in the rows, so that each cell is one group)."""
    desk = simulated_desk(SimulationConfig(days=2, symbols=6, orders_per_day=150, seed=23))
    # Fills without a fee, rebates, and fills without a quote (the simulated desk has none) must
    # be summed as the direct grouping does.
    row = pl.int_range(pl.len())
    fills = desk.fills.lazy().with_columns(
        fee=pl.when(row % 11 == 0).then(None).when(row % 5 == 0).then(-pl.col("fee"))
        .otherwise(pl.col("fee")),
        **{
            c: pl.when(row % 7 == 0).then(None).otherwise(pl.col(c))
            for c in ("quoted_spread_bps", "effective_spread_bps", "quote_position")
        },
    )  # fmt: skip
    buckets = venue_daily_buckets(fills, desk.children)
    assert set(buckets["breakdown"]) == {*DIMENSIONS, "cell"}
    for keys in [[d] for d in DIMENSIONS] + [list(DIMENSIONS)]:
        name = keys[0] if len(keys) == 1 else "cell"
        got = buckets.filter(pl.col("breakdown") == name)
        for d in DIMENSIONS:
            if d not in keys:
                assert set(got[d]) == {ALL}
        fixed = [pl.lit(ALL).alias(d) for d in DIMENSIONS if d not in keys]
        cells = venue_sums(fills.with_columns(fixed), desk.children.with_columns(fixed))
        assert cells.fills.height == cells.fills.select("trade_date", "venue", *keys).n_unique()
        direct = cells._aggregate(keys)
        columns = _columns(keys)
        order = ["trade_date", "venue", *keys]
        assert got.height == direct.height > 1
        assert_frame_equal(
            got.select(columns).sort(order),
            direct.select(columns).sort(order),
            check_exact=False,
            rel_tol=1e-9,
            abs_tol=1e-9,
        )


@pytest.mark.parametrize("cluster", ["order", "symbol_day"])
def test_fill_rows_of_some_columns_need_only_their_inputs(cluster) -> None:
    """`venue_frames(..., fill_columns=...)` from the fills' `fill_inputs` alone gives those
    columns of the full fill rows (what the window reads), and the same child rows; all the
    fill rows' inputs are `FILL_INPUTS`."""
    settings = VenueSettings(cluster=cluster)
    assert set(fill_inputs(FILL_COLUMNS, settings)) <= set(FILL_INPUTS)
    assert set(fill_inputs()) == set(FILL_INPUTS)
    full_fills, full_children = venue_frames(FILLS, CHILDREN, ORDERS, settings)
    for columns in (
        ("venue", "cluster", "all_in_cost_bps"),
        ("latency_ms", "size_bucket"),
        ("venue", "conditions", "qty"),
    ):
        narrow = FILLS.select(fill_inputs(columns, settings))
        assert narrow.width < FILLS.width
        fills, children = venue_frames(narrow, CHILDREN, ORDERS, settings, fill_columns=columns)
        assert_frame_equal(fills, full_fills.select(columns))
        # the children carry the conditions when the fills do (the window's rows)
        expected = full_children.select(
            c for c in full_children.columns if c != "conditions" or "conditions" in columns
        )
        assert_frame_equal(children, expected)


def test_children_without_any_fill_have_a_float_executed_quantity():
    """NumPy's bincount of no fills is an integer array: a date (or symbol range) whose child
    orders have no fill at all gave an Int64 `filled_qty`, which its Float64 neighbours could
    not be stacked with."""
    _, children = venue_frames(FILLS.head(0), CHILDREN, ORDERS)
    assert children.schema["filled_qty"] == pl.Float64
    assert children["filled_qty"].to_list() == [0.0, 0.0, 0.0]


def test_conditions_of_a_child_order_hand_computed() -> None:
    """The controls' levels of each child order (and of its fills): the order's arrival spread
    (12 bps: normal) and urgency (HIGH), the send time on the New York clock across the switch
    to summer time (2024-03-10), and the child's notional at the symbol-day's reference price
    ($10: 500 shares are $5,000, small; 3,000 are $30,000, medium)."""
    winter, summer = dt.date(2024, 3, 8), dt.date(2024, 3, 11)
    utc = dt.UTC
    sent = [
        (winter, dt.datetime(2024, 3, 8, 14, 59, tzinfo=utc), 500.0),  # 09:59 EST: open
        (winter, dt.datetime(2024, 3, 8, 15, 0, tzinfo=utc), 3000.0),  # 10:00 EST: midday
        (summer, dt.datetime(2024, 3, 11, 13, 59, tzinfo=utc), 500.0),  # 09:59 EDT: open
        (summer, dt.datetime(2024, 3, 11, 14, 0, tzinfo=utc), 500.0),  # 10:00 EDT: midday
        (summer, dt.datetime(2024, 3, 11, 19, 30, tzinfo=utc), 500.0),  # 15:30 EDT: close
        (summer, None, 500.0),  # no send time: unknown
    ]
    children = pl.DataFrame(
        {
            "child_id": [f"C{i}" for i in range(len(sent))],
            "trade_date": [d for d, _, _ in sent],
            "order_id": ["O1"] * len(sent),
            "venue": ["A"] * len(sent),
            "sent_ts": [t for _, t, _ in sent],
            "qty": [q for _, _, q in sent],
            "order_type": ["LIMIT"] * len(sent),
            "tif": ["IOC"] * len(sent),
            "end_ts": [None] * len(sent),
        },
        schema_overrides={"sent_ts": pl.Datetime("us", "UTC"), "end_ts": pl.Datetime("us", "UTC")},
    )
    orders = pl.concat([ORDERS.with_columns(trade_date=pl.lit(d)) for d in (winter, summer)])
    fills = FILLS.head(0).with_columns(pl.col("trade_date").cast(pl.Date))
    _, rows = venue_frames(fills, children, orders)
    assert rows["conditions"].to_list() == [
        "normal|HIGH|open|small",
        "normal|HIGH|midday|medium",
        "normal|HIGH|open|small",
        "normal|HIGH|midday|small",
        "normal|HIGH|close|small",
        "normal|HIGH|unknown|small",
    ]
    only_time = VenueSettings(controls=("time_bucket",), session_timezone="Europe/London")
    _, rows = venue_frames(fills, children, orders, only_time)
    # 14:59 UTC on 2024-03-08 is 14:59 in London: midday; 19:30 UTC on 2024-03-11 is close
    assert rows["conditions"].to_list() == [
        "midday",
        "midday",
        "midday",
        "midday",
        "close",
        "unknown",
    ]
