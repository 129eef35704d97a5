"""A trade date scored in symbol ranges (`quality.day.score_day` with a small `chunk_fills`)
gives the rows of the date scored whole: every fill exactly and in the same order, every order
(those without fills too) in its landed order, its sums to rounding."""

from __future__ import annotations

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from eqs_pipeline.core.ranges import in_memory, symbol_ranges
from eqs_pipeline.core.settings import QualitySettings
from eqs_pipeline.quality.day import score_day
from eqs_pipeline.simulate import SimulationConfig, simulate

CLOSE = {"rel_tol": 1e-9, "abs_tol": 1e-9}


@pytest.fixture(scope="module")
def day() -> dict[str, pl.DataFrame]:
    """One simulated date whose orders of one symbol lost every fill (orders with no fill and
    a symbol no fill has: they belong to a range all the same)."""
    data = simulate(SimulationConfig(days=1, symbols=12, orders_per_day=240, seed=5))
    frames = dict(data.tables)
    quiet = sorted(frames["executions"]["symbol"].unique())[3]
    frames["executions"] = frames["executions"].filter(pl.col("symbol") != quiet)
    frames["instruments"] = data.instruments
    assert frames["orders"].filter(pl.col("symbol") == quiet).height > 0
    return frames


@pytest.fixture(scope="module")
def whole(day):
    scored = score_day(in_memory(day), day["instruments"])
    assert scored.ranges == 1
    return scored


@pytest.mark.parametrize("chunk_fills", [1, 700, 3000])
def test_symbol_ranges_give_the_whole_days_rows(day, whole, chunk_fills) -> None:
    settings = QualitySettings(chunk_fills=chunk_fills)
    ranged = score_day(in_memory(day), day["instruments"], settings)
    assert ranged.ranges > 1
    assert_frame_equal(ranged.fills, whole.fills, check_exact=True)
    assert ranged.orders["order_id"].to_list() == day["orders"]["order_id"].to_list()
    assert_frame_equal(ranged.orders, whole.orders, **CLOSE)
    assert set(ranged.seconds) == {"fill", "order"}


def test_order_quality_alone_reads_the_stored_fills(day, whole) -> None:
    stored = {**day, "fill_quality": whole.fills}
    settings = QualitySettings(chunk_fills=700)
    alone = score_day(in_memory(stored), day["instruments"], settings, fills=False)
    assert alone.fills is None and alone.ranges > 1
    assert_frame_equal(alone.orders, whole.orders, **CLOSE)
    only_fills = score_day(in_memory(day), day["instruments"], settings, orders=False)
    assert only_fills.orders is None
    assert_frame_equal(only_fills.fills, whole.fills, check_exact=True)


def test_symbol_ranges_hold_at_most_the_limit_unless_one_symbol_exceeds_it() -> None:
    counts = pl.DataFrame({"symbol": ["D", "A", "C", "B", "E"], "fills": [5, 4, 0, 9, 3]})
    assert symbol_ranges(counts, 10) == [("A", "A"), ("B", "C"), ("D", "E")]
    assert symbol_ranges(counts, 100) == [("A", "E")]
    assert symbol_ranges(counts, 1) == [(s, s) for s in "ABCDE"]
    assert symbol_ranges(counts.head(0), 10) == []
    with pytest.raises(ValueError, match="chunk_fills must be at least 1"):
        symbol_ranges(counts, 0)


def test_the_default_scores_a_benchmark_day_whole() -> None:
    # The benchmark's 10m set has 500k fills a day: one range, the path measured there.
    assert QualitySettings().chunk_fills >= 500_000
