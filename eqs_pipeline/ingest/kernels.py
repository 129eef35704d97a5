"""Array kernels of the row rules, written by hand in NumPy where Polars' general operators cost
several times more on a day of millions of rows (docs/INGESTION.md, performance notes).

- `time_keys` packs (code, timestamp) pairs into one int64 each, so that sorting rows by a
  string key and a time costs one integer sort: the string is replaced by a small integer code
  (a row number of the table it refers to, or the rank of a symbol) and the time by its offset.
- `stable_order` sorts such keys stably, cheaply where rows landed by symbol or in time order;
  `key_time_order` sorts rows by (code, timestamp, tie-breaker), looking at the tie-breaker (a
  string) only for the few rows whose code and timestamp are equal.
- `run_cum_sum` is a cumulative sum restarting at every run of rows, added in the same order
  as Polars' `cum_sum().over(...)` adds them, so that the sums are bit for bit the same.
- `last_before` is an as-of look-up: per row, the last row of another table with the same
  code and a strictly earlier timestamp.
- `plain_text` and `stripped_text` tell from a text column's bytes that no value can break
  the `bad_text` rule or needs stripping, without hashing or matching its values.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa

# A packed key is code << bits | offset, kept below 2**62 (non-negative and with room for the
# one past-the-end offset of `last_before`).
_KEY_BITS = 62
# `stable_order` puts ascending runs of keys in order whole where there is at most one run in
# this many rows (else the runs are too short for it to pay).
_ROWS_PER_PLACED_RUN = 16
# `run_cum_sum` advances all runs a row at a time while more than this many are still going,
# then finishes the remaining (long) runs one at a time.
_FEW_RUNS = 256
# `plain_text` and `stripped_text` read a column's bytes this many values at a time: a bounded
# copy, small enough that the allocator keeps little of it (a million values at a time left a
# day's read 140 MiB larger, and was no faster).
_TEXT_ROWS_PER_PASS = 1 << 16


def time_keys(code: np.ndarray, stamps: np.ndarray) -> np.ndarray:
    """One int64 per row that sorts as (code, stamp) does and is equal where both are.

    `code` holds non-negative integers, `stamps` int64 (microseconds). A stamp becomes its
    offset from the smallest one; where the offsets and codes do not fit in 62 bits together
    (stamps centuries apart), it becomes its rank among the distinct stamps instead."""
    if code.size == 0:
        return np.zeros(0, np.int64)
    code_bits = int(code.max()).bit_length()
    low, high = int(stamps.min()), int(stamps.max())
    if (high - low).bit_length() + code_bits <= _KEY_BITS:
        offsets, bits = stamps - low, (high - low).bit_length()
    else:
        distinct, offsets = np.unique(stamps, return_inverse=True)
        bits = (distinct.size - 1).bit_length()
    return (code.astype(np.int64) << bits) | offsets.astype(np.int64)


def key_time_order(code: np.ndarray, stamps: np.ndarray, tie: pl.Series) -> np.ndarray:
    """Positions that sort the rows by (code, stamps, tie), `tie` (non-null text, one value per
    row) deciding between rows of equal code and stamp as Polars' sort of text does (by bytes).

    One integer sort (`time_keys`); only the rows whose packed key repeats are sorted again by
    their tie-breaker, in Polars. Rows equal in all three keep their order."""
    keys = time_keys(code, stamps)
    order = stable_order(keys, code, stamps)
    keys = keys[order]
    same = keys[1:] == keys[:-1]
    if same.any():
        tied = np.zeros(keys.size, bool)
        tied[1:] |= same
        tied[:-1] |= same
        at = np.flatnonzero(tied)
        rows = order[at]
        # The tied rows sit in runs of equal keys at the positions `at`, runs in key order:
        # sorted by (key, tie) they fill the same positions, each run re-ordered by its tie.
        by_tie = pl.DataFrame({"key": keys[at], "tie": tie.gather(rows), "row": rows}).sort(
            "key", "tie", maintain_order=True
        )
        order[at] = by_tie.get_column("row").to_numpy()
    return order


def stable_order(keys: np.ndarray, code: np.ndarray, stamps: np.ndarray) -> np.ndarray:
    """`np.argsort(keys, kind="stable")` of keys packing (code, stamps) (`time_keys`), cheaper
    where the rows landed nearly in order, as quotes and fills usually do.

    - Rows landed by symbol, each symbol's in time order, are ascending runs of keys that do
      not overlap: the runs are put in order whole (`_placed_runs`; 10M quotes: 65 ms against
      0.25 s for NumPy's stable sort, a timsort merging the runs).
    - Rows landed in time order, every symbol interleaved (in one file or a few), are sorted
      by stamp (few runs) and then stably by code with NumPy's radix sort (10M quotes: 0.4 s
      against 1.4 s for sorting their keys).
    - Otherwise the keys are sorted, with fewer runs than the stamps or none to exploit.
    All three are the stable sort by (code, stamp)."""
    if keys.size < 2:
        return np.arange(keys.size)
    descents = keys[1:] < keys[:-1]
    if not descents.any():
        return np.arange(keys.size)
    # Runs of one code each, so that runs of different codes cannot overlap.
    placed = _placed_runs(keys, np.flatnonzero(descents | (code[1:] != code[:-1])) + 1)
    if placed is not None:
        return placed
    if np.count_nonzero(descents) <= np.count_nonzero(stamps[1:] < stamps[:-1]):
        return np.argsort(keys, kind="stable")
    by_time = np.argsort(stamps, kind="stable")
    return by_time[_stable_code_order(code[by_time])]


def _placed_runs(keys: np.ndarray, breaks: np.ndarray) -> np.ndarray | None:
    """The stable sort of `keys` when its ascending runs (starting at 0 and at `breaks`) are
    few and, put in order of their first key, follow one another without overlapping (a key
    equal across two runs only in their landing order); None otherwise."""
    if breaks.size * _ROWS_PER_PLACED_RUN > keys.size:
        return None
    starts = np.concatenate(([0], breaks))
    ends = np.append(breaks, keys.size)
    by_first = np.argsort(keys[starts], kind="stable")
    starts, ends = starts[by_first], ends[by_first]
    last, first = keys[ends[:-1] - 1], keys[starts[1:]]
    if not ((last < first) | ((last == first) & (starts[:-1] < starts[1:]))).all():
        return None
    lengths = ends - starts
    into = np.cumsum(lengths) - lengths  # where each run goes
    return np.arange(keys.size) + np.repeat(starts - into, lengths)


def _stable_code_order(code: np.ndarray) -> np.ndarray:
    """Stable argsort of non-negative integer codes, 16 bits a pass (NumPy sorts 16-bit
    integers stably by radix)."""
    top = int(code.max())
    if top >= 1 << 32:
        return np.argsort(code, kind="stable")
    order = np.argsort((code & 0xFFFF).astype(np.uint16), kind="stable")
    if top < 1 << 16:
        return order
    high = (code[order] >> 16).astype(np.uint16)
    return order[np.argsort(high, kind="stable")]


def run_cum_sum(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Cumulative sums of `values` (float64) within runs of rows; `starts` is True on the first
    row of every run (and on row 0).

    Each run's sum is added up row after row from its first value, as Polars' `cum_sum` adds
    (floating-point sums depend on the order, and the overfill rule compares them with a
    tolerance of 1e-9). Polars' `cum_sum().over(run)` does the same but pays per group: about
    1 µs for each of 2.3M child orders with a fill or two each. So all runs advance one row at
    a time together, in NumPy, while there are many of them; the few long ones left finish one
    at a time with NumPy's cumulative sum (also row after row)."""
    out = np.array(values, dtype=np.float64)
    if out.size == 0:
        return out
    first = np.flatnonzero(starts)
    end = np.append(first[1:], out.size)
    row = first + 1  # the next row to add, per run
    going = row < end
    row, end = row[going], end[going]
    while row.size > _FEW_RUNS:
        out[row] += out[row - 1]
        row += 1
        going = row < end
        row, end = row[going], end[going]
    for r, e in zip(row.tolist(), end.tolist(), strict=True):
        out[r - 1 : e] = np.add.accumulate(out[r - 1 : e])
    return out


def last_before(
    left_code: np.ndarray, left_stamps: np.ndarray, code: np.ndarray, stamps: np.ndarray
) -> np.ndarray:
    """Per row (`code`, `stamps`): the position of the last `left` row with the same code and a
    stamp strictly before, or -1. Of left rows with equal code and stamp the last one (by
    position) is taken.

    What a backward as-of join by code (`allow_exact_matches=False`) finds, on one integer key
    per row (`time_keys`) with one stable sort of the left rows and a binary search per row:
    the as-of join with `by` needs the left rows sorted and groups them by the key. A stamp
    past the last left stamp is clamped to one past it (every left row is before it) and one
    before the first to the first (none is)."""
    found = np.full(code.size, -1, np.int64)
    if left_code.size == 0 or code.size == 0:
        return found
    code_bits = int(max(left_code.max(), code.max())).bit_length()
    low, high = int(left_stamps.min()), int(left_stamps.max())
    if (high - low + 1).bit_length() + code_bits <= _KEY_BITS and high < np.iinfo(np.int64).max:
        bits = (high - low + 1).bit_length()
        left_offsets = left_stamps - low
        offsets = np.clip(stamps, low, high + 1) - low
    else:  # stamps too far apart for offsets: ranks among the left stamps (same comparisons)
        distinct = np.unique(left_stamps)
        bits = distinct.size.bit_length()
        left_offsets = np.searchsorted(distinct, left_stamps, side="left")
        offsets = np.searchsorted(distinct, stamps, side="left")
    left_keys = left_code.astype(np.int64)  # in place from here: the left rows are many
    left_keys <<= bits
    left_keys |= left_offsets
    del left_offsets
    left_order = stable_order(left_keys, left_code, left_stamps)
    left_keys = left_keys[left_order]
    keys = (code.astype(np.int64) << bits) | offsets
    # Searched in key order, each search starts where the previous ended: several times
    # faster on millions of rows than searching in row order.
    order = stable_order(keys, code, stamps)
    before = np.empty(code.size, np.int64)
    before[order] = np.searchsorted(left_keys, keys[order], side="left") - 1
    hit = before >= 0
    at = np.where(hit, before, 0)
    hit &= (left_keys[at] >> bits) == code
    found[hit] = left_order[at[hit]]
    return found


def plain_text(values: pl.Series, max_chars: int) -> bool:
    """Whether no value of the text column is longer than `max_chars` or holds a character
    outside printable ASCII (so no control character of the `bad_text` rule).

    Told from the column's bytes, not its distinct values: a value of at most `max_chars` bytes
    has at most that many characters, and a control character (C0, C1, the Unicode line
    separators and bidirectional marks) always has a byte outside 0x20-0x7E. Hashing a column
    to its distinct values costs about 0.3 µs a value (2M fill ids: 0.6 s); reading its bytes,
    a tenth. False says only that the rule must look at the values."""
    longest = values.str.len_bytes().max()
    if longest is not None and longest > max_chars:  # type: ignore[operator]
        return False
    return _bytes_within(values, 0x20, 0x7E)


def stripped_text(values: pl.Series) -> bool:
    """Whether no value (nulls aside) of the text column is empty or starts or ends with
    whitespace, told from its bytes: a column of non-empty values of printable ASCII without a
    space has none to strip (Unicode's White_Space, what `str.strip_chars()` strips, is ASCII
    controls and space and some non-ASCII characters). A regular expression (`^\\s|\\s$|^$`)
    costs about 35 ns a value (10M quote symbols: 0.35 s); this, a quarter of it. False says
    only that the values must be looked at (ids, symbols and venues are never spaced, text like
    a sector name may be)."""
    shortest = values.str.len_bytes().min()
    if shortest is not None and shortest == 0:  # type: ignore[operator]
        return False
    return _bytes_within(values, 0x21, 0x7E)


def _bytes_within(values: pl.Series, low: int, high: int) -> bool:
    """Whether every byte of every value of the text column is in [low, high].

    Read as Arrow lays a text column out (the values' bytes end to end), `_TEXT_ROWS_PER_PASS`
    values at a time: Polars has no operation on a column's bytes."""
    for start in range(0, values.len(), _TEXT_ROWS_PER_PASS):
        part = values.slice(start, _TEXT_ROWS_PER_PASS).to_arrow(
            compat_level=pl.CompatLevel.oldest()
        )
        if part.type != pa.large_string():  # what the oldest compat level gives, if not
            part = part.cast(pa.large_string())
        _, offsets, data = part.buffers()
        if data is None:
            continue
        ends = np.frombuffer(offsets, np.int64)[part.offset : part.offset + len(part) + 1]
        text = np.frombuffer(data, np.uint8)[ends[0] : ends[-1]]
        # One comparison: bytes below `low` wrap around past `high`.
        if (text - np.uint8(low) > np.uint8(high - low)).any():
            return False
    return True
