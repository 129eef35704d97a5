"""`core.keys.hashes_distinct`: distinct keys, repeats, several columns and nulls."""

import polars as pl

from eqs_pipeline.core.keys import hashes_distinct


def test_distinct_ids_are_distinct_and_a_repeat_is_not():
    ids = pl.DataFrame({"exec_id": [f"E{i:07d}" for i in range(100_000)][::-1]})
    assert hashes_distinct(ids, ["exec_id"])
    repeated = pl.concat([ids, ids.slice(41_234, 1)])
    assert not hashes_distinct(repeated, ["exec_id"])


def test_a_key_of_several_columns_repeats_only_as_a_whole():
    rows = pl.DataFrame({"trade_date": [1, 1, 2, 2], "order_id": ["a", "b", "a", "b"]})
    assert hashes_distinct(rows, ["trade_date", "order_id"])
    assert not hashes_distinct(rows, ["order_id"])
    again = pl.concat([rows, rows.slice(2, 1)])
    assert not hashes_distinct(again, ["trade_date", "order_id"])


def test_nulls_repeat_like_values():
    rows = pl.DataFrame({"a": [None, None, 1], "b": ["x", "x", "x"]})
    assert not hashes_distinct(rows, ["a", "b"])
    assert hashes_distinct(rows.slice(1), ["a", "b"])
    assert hashes_distinct(rows.slice(0, 1), ["a"])
