"""The NumPy kernels of the row rules (`eqs_pipeline.ingest.kernels`) against what Polars (or
plain Python) computes the slow way: the same order, the same sums bit for bit, the same
prevailing quote, the same verdict on text. And the rules built on them (`_overfilled`,
`_prevailing_mid`, `_collapse_repeated_keys`) against the Polars formulations they replaced."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import numpy as np
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from eqs_pipeline.core.contract import CONTRACT
from eqs_pipeline.ingest import kernels
from eqs_pipeline.ingest.read import REASONS, SOURCE_FILE, SOURCE_ROW
from eqs_pipeline.ingest.rules import (
    CONTROL_CHARACTERS,
    FLAG,
    OVERFILL_RELATIVE_TOLERANCE,
    _collapse_repeated_keys,
    _mids,
    _overfilled,
    _prevailing_mid,
)

TS = pl.Datetime("us", "UTC")
INT64_MIN, INT64_MAX = np.iinfo(np.int64).min, np.iinfo(np.int64).max


def _layouts(rng: np.random.Generator, n: int, codes: int) -> dict[str, tuple[np.ndarray, ...]]:
    """(code, stamps) of rows landed in the ways `stable_order` tells apart, with ties."""
    code = rng.integers(0, codes, n)
    stamps = rng.integers(0, max(n // 4, 1), n)  # about four rows a stamp: many ties
    by_time = np.argsort(stamps, kind="stable")
    by_code = np.lexsort((stamps, code))
    grouped = np.concatenate([by_code[code[by_code] == c] for c in rng.permutation(codes)])
    return {
        "random": (code, stamps),
        "in time order": (code[by_time], stamps[by_time]),
        "by code, each in time order": (code[grouped], stamps[grouped]),
        "sorted": (code[by_code], stamps[by_code]),
        "in time order, a tail out of order": (
            code[by_time],
            np.concatenate([stamps[by_time][: n - 5], stamps[by_time][n - 5 :][::-1]]),
        ),
        # Two files, each by code and in time order: runs of a code overlap in time.
        "two files by code": (
            np.concatenate([code[by_code][::2], code[by_code][1::2]]),
            np.concatenate([stamps[by_code][::2], stamps[by_code][1::2]]),
        ),
    }


@pytest.mark.parametrize("codes", [1, 7, 70_000])  # 70k: the two-pass radix sort
@pytest.mark.parametrize("n", [0, 1, 2, 5_000])
def test_stable_order_is_numpys_stable_sort_of_the_keys(n, codes):
    rng = np.random.default_rng(n + codes)
    for layout, (code, stamps) in _layouts(rng, n, codes).items():
        keys = kernels.time_keys(code, stamps)
        expected = np.lexsort((stamps, code))  # stable: equal rows keep their order
        assert np.array_equal(np.argsort(keys, kind="stable"), expected), layout
        assert np.array_equal(kernels.stable_order(keys, code, stamps), expected), layout


def _runs(*runs: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Rows landed as ascending runs, each (code, first stamp, last stamp)."""
    code = np.concatenate([np.full(b - a + 1, c) for c, a, b in runs])
    stamps = np.concatenate([np.arange(a, b + 1) for _, a, b in runs])
    return code, stamps


@pytest.mark.parametrize(
    ("code_stamps", "placed"),
    [
        (_runs((2, 0, 99), (1, 0, 99), (0, 5, 50)), True),  # landed by symbol
        (_runs((0, 0, 99), (2, 0, 99), (1, 5, 50)), True),  # (0 and 2: one ascending run)
        (_runs((1, 0, 99), (0, 0, 99), (1, 50, 149), (0, 200, 210)), False),  # overlapping
    ],
)
def test_stable_order_places_runs_whole_only_where_the_stable_sort_would(code_stamps, placed):
    code, stamps = code_stamps
    keys = kernels.time_keys(code, stamps)
    breaks = np.flatnonzero((keys[1:] < keys[:-1]) | (code[1:] != code[:-1])) + 1
    assert (kernels._placed_runs(keys, breaks) is not None) == placed
    expected = np.argsort(keys, kind="stable")
    assert kernels.stable_order(keys, code, stamps).tolist() == expected.tolist()


def test_stable_order_of_every_short_sequence(monkeypatch):
    """Runs placed whole however short they are, equal keys across runs included."""
    monkeypatch.setattr(kernels, "_ROWS_PER_PLACED_RUN", 1)
    for n in range(1, 7):
        for values in itertools.product(range(3), repeat=n):
            code, stamps = np.array(values) // 2, np.array(values) % 2
            keys = kernels.time_keys(code, stamps)
            expected = np.argsort(keys, kind="stable")
            assert kernels.stable_order(keys, code, stamps).tolist() == expected.tolist()


@pytest.mark.parametrize(
    "stamps",
    [
        [5, 5, -3, 1_700_000_000_000_000],
        [INT64_MIN, INT64_MAX, 0, INT64_MAX, INT64_MIN],  # offsets do not fit: ranks
        [INT64_MAX, INT64_MAX - 1, INT64_MAX],
    ],
)
def test_time_keys_order_and_equality_follow_code_then_stamp(stamps):
    stamps = np.array(stamps, np.int64)
    code = np.array([3, 0, 3, 1, 0][: stamps.size], np.int64)
    keys = kernels.time_keys(code, stamps)
    pairs = list(zip(code.tolist(), stamps.tolist(), strict=True))
    for i in range(stamps.size):
        for j in range(stamps.size):
            assert (keys[i] < keys[j]) == (pairs[i] < pairs[j])
            assert (keys[i] == keys[j]) == (pairs[i] == pairs[j])


def test_key_time_order_breaks_ties_by_the_text_as_polars_sorts_it():
    rng = np.random.default_rng(1)
    n = 3_000
    code = rng.integers(0, 40, n)
    stamps = rng.integers(0, 200, n)  # many (code, stamp) ties
    tie = pl.Series([f"E{v}" for v in rng.permutation(n)])  # "E10" < "E9", as bytes
    frame = pl.DataFrame({"code": code, "stamp": stamps, "tie": tie}).with_row_index()
    expected = frame.sort("code", "stamp", "tie", maintain_order=True).get_column("index")
    assert kernels.key_time_order(code, stamps, tie).tolist() == expected.to_list()


@pytest.mark.parametrize(
    "lengths",
    [
        [1] * 2_000,  # a fill per child order
        [3, 1, 600, 2, 1, 1_000, 5] * 50,  # long runs finish one at a time
        [1_000] * 300,  # more long runs than `_FEW_RUNS`
        [40_000],
        [],
    ],
)
def test_run_cum_sum_adds_as_polars_cum_sum_over_runs_does(lengths):
    rng = np.random.default_rng(len(lengths))
    run = np.repeat(np.arange(len(lengths)), lengths)
    values = rng.random(run.size) * 10.0 ** rng.integers(-3, 6, run.size)
    starts = np.ones(run.size, bool)
    starts[1:] = run[1:] != run[:-1]
    expected = (
        pl.DataFrame({"run": run, "v": values})
        .select(pl.col("v").cum_sum().over("run"))
        .to_series()
        .to_numpy()
    )
    assert np.array_equal(kernels.run_cum_sum(values, starts), expected)  # bit for bit


def _last_before_slowly(left_code, left_stamps, code, stamps) -> list[int]:
    out = []
    for c, s in zip(code.tolist(), stamps.tolist(), strict=True):
        before = [
            (ls, i)
            for i, (lc, ls) in enumerate(zip(left_code.tolist(), left_stamps.tolist(), strict=True))
            if lc == c and ls < s
        ]
        out.append(max(before)[1] if before else -1)  # latest stamp, then last position
    return out


@given(
    left=st.lists(st.tuples(st.integers(0, 4), st.integers(-5, 25)), max_size=40),
    right=st.lists(st.tuples(st.integers(0, 5), st.integers(-10, 30)), max_size=40),
    scale=st.sampled_from([1, 10**12, 2**58]),  # 2**58: offsets do not fit, ranks are used
)
def test_last_before_finds_the_last_left_row_strictly_before(left, right, scale):
    left_code = np.array([c for c, _ in left], np.int64)
    left_stamps = np.array([s * scale for _, s in left], np.int64)
    code = np.array([c for c, _ in right], np.int64)
    stamps = np.array([s * scale for _, s in right], np.int64)
    found = kernels.last_before(left_code, left_stamps, code, stamps)
    assert found.tolist() == _last_before_slowly(left_code, left_stamps, code, stamps)


def test_last_before_on_many_rows_of_every_layout():
    rng = np.random.default_rng(2)
    for layout, (left_code, left_stamps) in _layouts(rng, 2_000, 9).items():
        code = rng.integers(0, 10, 300)  # code 9: no left row
        stamps = rng.integers(-5, 600, 300)  # equal to left stamps too: not before
        found = kernels.last_before(left_code, left_stamps, code, stamps)
        assert found.tolist() == _last_before_slowly(left_code, left_stamps, code, stamps), layout


HOSTILE_TEXT = [
    "",
    " ",
    "A B",
    " AB",
    "AB ",
    "AB\t",
    "\nAB",
    "A\x00B",
    "A\x1bB",
    "A\x7fB",
    "A\x85B",  # C1 (NEL), also White_Space
    "\xa0AB",  # no-break space
    "AB\u3000",  # ideographic space
    "T\u202e1",  # RTL override
    "A\u2028B",
    "A\u200eB",
    "Société",
    "東京",
    "A" * 129,
    "é" * 100,  # 100 characters, 200 bytes
]
PLAIN = ["AAPL", "BRK.B", "O20240102-000001", "X" * 128, "a-b_c/d:e", None]


def _bad_text(values: pl.Series, max_chars: int) -> bool:
    return bool(
        (values.str.contains(CONTROL_CHARACTERS) | (values.str.len_chars() > max_chars)).any()
    )


def _needs_strip(values: pl.Series) -> bool:
    return bool(values.str.contains(r"^\s|\s$|^$").any())


@pytest.mark.parametrize("rows_per_pass", [1, 3, 1 << 20])
def test_plain_and_stripped_text_are_never_wrong(monkeypatch, rows_per_pass):
    """True must mean no value breaks the rule; False may be said of values that do not (the
    values are then looked at)."""
    monkeypatch.setattr(kernels, "_TEXT_ROWS_PER_PASS", rows_per_pass)
    plain = pl.Series(PLAIN * 3, dtype=pl.String)
    assert kernels.plain_text(plain, 128) and not _bad_text(plain, 128)
    assert kernels.stripped_text(plain) and not _needs_strip(plain)
    assert not kernels.plain_text(plain, 127)
    assert kernels.plain_text(pl.Series([None, None], dtype=pl.String), 1)
    assert kernels.stripped_text(pl.Series([], dtype=pl.String))
    for value in HOSTILE_TEXT:
        values = pl.Series([*PLAIN, value, *PLAIN], dtype=pl.String).slice(1)
        if _bad_text(values, 128):
            assert not kernels.plain_text(values, 128), repr(value)
        if _needs_strip(values):
            assert not kernels.stripped_text(values), repr(value)
    assert not kernels.plain_text(pl.Series(["Société"]), 128)  # not ASCII: looked at
    assert not kernels.stripped_text(pl.Series(["A B"]))  # a space inside: looked at


# The rules on top of the kernels, against the Polars formulations they replaced -------------


def _fills(rng: np.random.Generator, n: int) -> pl.DataFrame:
    """Fills of 30 orders and 400 child orders (some without one), many at the same instant,
    landed in no order; about one in six broke another rule."""
    return pl.DataFrame(
        {
            "exec_id": [f"E{i}" for i in rng.permutation(n)],
            "exec_ts": rng.integers(0, n // 5, n) * 1_000_000,
            "qty": rng.integers(1, 40, n) * 0.1,
            "__o_row": rng.integers(0, 30, n),
            "__o_qty": rng.integers(20, 200, 30)[rng.integers(0, 30, n)] * 1.0,
            "__c_row": np.where(rng.random(n) < 0.1, -1, rng.integers(0, 400, n)),
            "__c_qty": rng.integers(1, 30, n) * 0.3,
            "ok": rng.random(n) > 1 / 6,
        }
    ).with_columns(
        pl.col("exec_ts").cast(TS),
        pl.when(pl.col("__c_row") >= 0).then(pl.col("__c_row")).alias("__c_row"),
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_overfill_is_polars_cumulative_sum_in_fill_order(seed):
    fills = _fills(np.random.default_rng(seed), 4_000)
    if seed == 1:  # landed in time order: the radix path
        fills = fills.sort("exec_ts", maintain_order=True)
    ok = pl.col("ok")
    tolerance = 1 + OVERFILL_RELATIVE_TOLERANCE
    # The row codes of the staged order and child order partition the fills as their ids do.
    for key, limit in (("__o_row", "__o_qty"), ("__c_row", "__c_qty")):
        good = pl.when(ok).then(pl.col("qty")).otherwise(0.0)
        filled = good.cum_sum().over(key, order_by=["exec_ts", "exec_id"])
        over = ok & pl.col(key).is_not_null() & (filled > pl.col(limit) * tolerance)
        expected = fills.select(over.fill_null(False)).to_series().to_numpy()
        flagged = _overfilled(fills, fills.get_column("ok").to_numpy(), key, limit)
        assert expected.any() and not expected.all()
        assert np.array_equal(flagged, expected), key


def _prevailing_mid_by_join_asof(df: pl.DataFrame, good_quotes: pl.DataFrame) -> pl.Series:
    """What `_prevailing_mid` computed before it had integer keys (one symbol range)."""
    fills = (
        df.select(pl.int_range(pl.len()).alias("__i"), "symbol", "exec_ts")
        .drop_nulls(["symbol", "exec_ts"])
        .sort("exec_ts")
    )
    quotes = (
        good_quotes.filter(pl.col("symbol").is_in(fills.get_column("symbol").unique().implode()))
        .select("symbol", "ts", ((pl.col("bid_px") + pl.col("ask_px")) / 2).alias("__mid"))
        .sort("ts", maintain_order=True)
    )
    found = fills.join_asof(
        quotes,
        left_on="exec_ts",
        right_on="ts",
        by="symbol",
        strategy="backward",
        allow_exact_matches=False,
        check_sortedness=False,
    ).select("__i", "__mid")
    return (
        pl.DataFrame({"__i": pl.int_range(df.height, eager=True)})
        .join(found, on="__i", how="left", maintain_order="left")
        .get_column("__mid")
    )


@pytest.mark.parametrize("chunk_fills", [1, 7, 1_000_000])
@pytest.mark.parametrize("quotes_in_time_order", [False, True])
def test_prevailing_mid_is_the_as_of_join_by_symbol(chunk_fills, quotes_in_time_order):
    rng = np.random.default_rng(chunk_fills)
    symbols = ["AAPL", "MSFT", "BRK.B", "ZZ", "A", None]
    n_quotes, n_fills = 3_000, 500
    quote_ts = rng.integers(0, 400, n_quotes) * 1_000_000  # many quotes at the same instant
    quotes = pl.DataFrame(
        {
            "symbol": [symbols[i] for i in rng.integers(0, 5, n_quotes)],
            "ts": quote_ts,
            "bid_px": rng.integers(100, 200, n_quotes) * 1.0,
            "ask_px": rng.integers(200, 300, n_quotes) * 1.0,
        }
    ).with_columns(pl.col("ts").cast(TS))
    if quotes_in_time_order:
        quotes = quotes.sort("ts", maintain_order=True)
    fills = pl.DataFrame(
        {
            "symbol": [symbols[i] for i in rng.integers(0, 6, n_fills)],  # "A": no quote
            # On a quote's instant (not yet prevailing), before the first and after the last.
            "exec_ts": rng.integers(-5, 410, n_fills) * 1_000_000,
        }
    ).with_columns(
        pl.when(pl.int_range(pl.len()) % 50 != 3).then(pl.col("exec_ts")).cast(TS),
    )
    fills = fills.with_columns(pl.col("symbol").replace({"A": "NONE"}))
    mids = _prevailing_mid(fills, quotes, chunk_fills)
    expected = _prevailing_mid_by_join_asof(fills, quotes)
    assert mids.null_count() > 0 and mids.null_count() < n_fills
    assert mids.to_list() == expected.to_list()


def test_prevailing_mid_without_quotes_or_fills_is_null():
    quotes = pl.DataFrame(
        schema={"symbol": pl.String, "ts": TS, "bid_px": pl.Float64, "ask_px": pl.Float64}
    )
    fills = pl.DataFrame(
        {"symbol": ["A", None], "exec_ts": [datetime(2024, 1, 2, tzinfo=UTC), None]},
        schema={"symbol": pl.String, "exec_ts": TS},
    )
    assert _prevailing_mid(fills, quotes, 10).to_list() == [None, None]
    assert _prevailing_mid(fills.head(0), quotes, 10).to_list() == []


def test_mids_are_null_without_a_quote_or_with_a_null_price():
    quotes = pl.DataFrame({"bid_px": [1.0, None, 3.0], "ask_px": [2.0, 2.0, 5.0]})
    assert _mids(quotes, np.array([2, -1, 1, 0])).to_list() == [4.0, None, None, 1.5]
    assert _mids(quotes.drop_nulls(), np.array([1, -1, 0])).to_list() == [4.0, None, 1.5]
    assert _mids(quotes.head(0), np.array([-1])).to_list() == [None]


def _collapse_by_hashing_every_row(df: pl.DataFrame, key: list[str], names: list[str]):
    """What `_collapse_repeated_keys` computed before it looked only at repeated keys."""
    unique_if_bad = pl.when(pl.col(REASONS).list.len() > 0).then(pl.int_range(pl.len()))
    identity = [*names, "__bad_row"]
    marked = df.with_columns(unique_if_bad.alias("__bad_row")).with_columns(
        pl.all_horizontal(pl.col(k).is_not_null() for k in key).alias("__has_key"),
        pl.len().over(key).alias("__n_key"),
        pl.len().over(identity).alias("__n_same"),
        (pl.int_range(pl.len()).over(identity) == 0).alias("__first"),
    )
    conflict = pl.col("__has_key") & (pl.col("__n_key") > pl.col("__n_same"))
    collapsed = pl.col("__has_key") & ~conflict & ~pl.col("__first")
    marked = marked.with_columns(
        collapsed.alias("__collapsed"),
        conflict.fill_null(False).alias(FLAG + "duplicate_key_conflict"),
    )
    counts = (
        marked.filter(pl.col("__collapsed"))
        .group_by(SOURCE_FILE)
        .agg(pl.len().cast(pl.Int64).alias("collapsed"))
    )
    kept = marked.filter(~pl.col("__collapsed")).drop(
        "__bad_row", "__has_key", "__n_key", "__n_same", "__first", "__collapsed"
    )
    return kept, counts


def test_collapsing_looks_at_repeated_keys_only_with_the_same_result():
    rng = np.random.default_rng(3)
    contract = CONTRACT["child_orders"]
    n = 2_000
    ids = [None if i % 97 == 0 else f"C{i % 1_300}" for i in rng.permutation(n)]
    df = pl.DataFrame(
        {
            "child_id": ids,
            "order_id": [f"O{i}" for i in rng.integers(0, 3, n)],  # some repeats identical
            "venue": "XNAS",
            "sent_ts": None,
            "qty": rng.integers(1, 3, n) * 100.0,
            "order_type": "LIMIT",
            "limit_price": None,
            "tif": "DAY",
            "end_ts": None,
            SOURCE_FILE: [f"f{i}" for i in rng.integers(0, 3, n)],
            SOURCE_ROW: np.arange(n),
            REASONS: [["bad_value:qty"] if i % 151 == 0 else [] for i in range(n)],
        },
        schema_overrides={**contract.polars_schema, REASONS: pl.List(pl.String)},
    )
    kept, counts = _collapse_repeated_keys(df, contract)
    expected_kept, expected_counts = _collapse_by_hashing_every_row(
        df, list(contract.key), contract.names
    )
    assert kept.equals(expected_kept)
    assert counts.sort(SOURCE_FILE).equals(expected_counts.sort(SOURCE_FILE))
    assert counts["collapsed"].sum() > 0 and kept[FLAG + "duplicate_key_conflict"].any()
