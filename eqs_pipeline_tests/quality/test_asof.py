"""The sort and segment primitives of `asof`, against plain NumPy."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
import pytest

from eqs_pipeline.quality.asof import Groups, Segments, Timeline, group_order, stable_order


def _layout(rng: np.random.Generator, groups: int, n: int, layout: str):
    g = rng.integers(0, groups, n)
    t = rng.integers(0, 50, n)  # few distinct times: many ties, which must keep landing order
    if layout == "time":
        order = np.argsort(t, kind="stable")
    elif layout == "blocks":  # per-group blocks in time order, blocks in no particular order
        present, which = np.unique(g, return_inverse=True)
        rank = rng.permutation(present.size)[which]
        order = np.lexsort((t, rank))
    else:
        order = np.arange(n)
    return g[order], t[order]


@pytest.mark.parametrize("layout", ["time", "blocks", "shuffled"])
@pytest.mark.parametrize("groups", [1, 7, 70_000, 5_000_000_000])
def test_stable_order_is_a_stable_sort_by_group_then_time(layout, groups):
    rng = np.random.default_rng(groups)
    for n in (0, 1, 2, 1_000, 20_000):
        g, t = _layout(rng, groups, n, layout)
        np.testing.assert_array_equal(stable_order(g, t), np.lexsort((t, g)))


def test_group_order_is_stable_and_declines_ids_beyond_32_bits():
    rng = np.random.default_rng(0)
    for high in (3, 1 << 16, (1 << 32) - 1):
        g = rng.integers(0, high, 10_000, endpoint=True)
        np.testing.assert_array_equal(group_order(g), np.argsort(g, kind="stable"))
    assert group_order(np.array([0, 1 << 32])) is None
    assert group_order(np.array([-1, 0])) is None


def test_segments_first_and_running_sum_restart_at_each_group():
    gid = np.array([0, 0, 0, 3, 5, 5])
    values = np.array([1.0, 2.0, 3.0, 10.0, 0.5, 0.25])
    seg = Segments(gid)
    np.testing.assert_array_equal(seg.first(values), [1.0, 1.0, 1.0, 10.0, 0.5, 0.5])
    np.testing.assert_array_equal(seg.cum_sum(values), [1.0, 3.0, 6.0, 10.0, 0.5, 0.75])
    np.testing.assert_array_equal(seg.step_starts(), [True, False, False, True, True, False])
    empty = Segments(np.array([], dtype=np.int64))
    assert empty.cum_sum(np.array([])).size == 0


def _timeline_of_keys(keys: np.ndarray) -> Timeline:
    return Timeline(pl.DataFrame(), Groups(np.array([], dtype=np.int64), ()), keys, keys, keys)


@pytest.mark.parametrize("strict", [True, False])
def test_last_before_agrees_with_a_binary_search_for_sorted_and_unsorted_keys(strict):
    rng = np.random.default_rng(5)
    side = "left" if strict else "right"
    for n, m in ((0, 10), (1, 5), (2_000, 500), (20_000, 20_000), (20_000, 10)):
        rows = _timeline_of_keys(np.sort(rng.integers(0, 300, n)))  # many equal keys
        for keys in (np.sort(rng.integers(-5, 305, m)), rng.integers(-5, 305, m)):
            expected = np.searchsorted(rows.keys, keys, side=side) - 1
            np.testing.assert_array_equal(rows._last_before(keys, strict=strict), expected)


def test_group_ids_number_dates_then_symbols_and_mark_unknown_rows():
    groups = Groups(np.array([20_000, 20_003]), ("A", "B", "C"))
    frame = pl.DataFrame(
        {
            "trade_date": [20_003, 20_000, None, 20_001, 20_000, 20_003],
            "symbol": ["C", "B", "A", "A", "Z", None],
        },
        schema={"trade_date": pl.Date, "symbol": pl.String},
    )
    np.testing.assert_array_equal(groups.ids(frame), [5, 1, -1, -1, -1, -1])
    one_day = Groups(np.array([20_000]), ("A", "B", "C"))
    np.testing.assert_array_equal(one_day.ids(frame), [-1, 1, -1, -1, -1, -1])
    assert Groups(np.array([], dtype=np.int64), ()).ids(frame).tolist() == [-1] * 6


def test_groups_of_a_frame_are_its_sorted_dates_and_symbols():
    frame = pl.DataFrame(
        {
            "trade_date": [date(2026, 11, 3), date(2026, 11, 2), None, date(2026, 11, 3)],
            "symbol": ["MSFT", None, "AAPL", "MSFT"],
        }
    )
    groups = Groups.of(frame)
    assert groups.symbols == ("AAPL", "MSFT")
    assert groups.days.tolist() == [
        (date(2026, 11, 2) - date(1970, 1, 1)).days,
        (date(2026, 11, 3) - date(1970, 1, 1)).days,
    ]
