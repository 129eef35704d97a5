"""As-of look-ups of the prevailing NBBO, and interval integrals over quotes and the tape.

The quote conventions of docs/METRICS.md live here and nowhere else:
- at a fill, the prevailing quote is the last with `ts` strictly before `exec_ts`;
- at an order's arrival, and at `t + h`, the last with `ts` at or before the instant (after the
  session's last quote that is the session's last quote).
Among quotes with equal `ts` the last one landed wins (the sorts keep landing order).

How the look-ups are done (docs/PERFORMANCE.md): quotes and prints are series of one trade date
and symbol. Each (trade_date, symbol) pair gets an integer group id, and each row an int64
key `group * 2**40 + microseconds since the group's first row`, so that one sorted array of
keys orders all series at once. An as-of look-up is then a search of the left keys in the right
keys in ascending order (a linear merge for many keys, as a partition's sorted fills are; a
binary search for few), checked to land in the same group: no hashing of string `by` columns, no
re-sorting of the left side per horizon, and one prepared `Timeline` serves every look-up of
the partition.

Interval benchmarks use cumulative sums so that each order costs two as-of look-ups instead of a
range join: an interval sum is `cum(<= end) - cum(< start)`. Sums are taken of deviations from a
per-symbol reference price, which keeps the cumulative magnitudes small and the differences exact
to far below a hundredth of a basis point.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

US_PER_S = 1_000_000

# Quotes and prints serve only rows of their own trade date and symbol.
GROUP = ["trade_date", "symbol"]

# Offsets within a group are microseconds since the group's first row, below 2**40 (12.7 days).
SPAN = 1 << 40

# Look-ups of at least 1/MERGE_FRACTION as many ascending keys as a timeline has rows merge
# (`Timeline._last_before`); fewer are binary searched.
MERGE_FRACTION = 64


@dataclass(frozen=True)
class Groups:
    """The (trade_date, symbol) pairs of a timeline, numbered in (trade_date, symbol) order."""

    days: np.ndarray  # sorted trade dates as days since the epoch
    symbols: tuple[str, ...]

    @staticmethod
    def of(frame: pl.DataFrame) -> Groups:
        days = frame["trade_date"].drop_nulls().unique().cast(pl.Int32).sort().to_numpy()
        # Lazily, Polars finds the distinct symbols of a frame's chunks in parallel (a day of
        # quotes: 13 ms against 27).
        found = frame.lazy().select(pl.col("symbol").drop_nulls().unique()).collect()
        return Groups(days.astype(np.int64), tuple(sorted(found.to_series().to_list())))

    def ids(self, frame: pl.DataFrame) -> np.ndarray:
        """Group id per row (int64); -1 where the date or symbol is null or not in the timeline.
        One Polars expression (the symbol's rank through an Enum of the sorted symbols, the
        date's rank among the days), evaluated in parallel over the frame's chunks."""
        if not self.days.size:
            return np.full(frame.height, -1, dtype=np.int64)
        symbol = pl.col("symbol").cast(pl.Enum(self.symbols), strict=False).to_physical()
        day = pl.col("trade_date").cast(pl.Int32)
        if self.days.size == 1:  # a daily partition
            rank = pl.when(day == int(self.days[0])).then(pl.lit(0, pl.Int64))
        else:
            rank = day.replace_strict(
                self.days.tolist(), list(range(self.days.size)), default=None, return_dtype=pl.Int64
            )
        gid = rank * len(self.symbols) + symbol.cast(pl.Int64)
        return frame.select(gid.fill_null(-1)).to_series().to_numpy()


def instants_us(values: pl.Series) -> np.ndarray:
    """A UTC Datetime series as int64 microseconds since the epoch (nulls become 0)."""
    return values.cast(pl.Datetime("us", "UTC")).dt.epoch("us").fill_null(0).to_numpy()


@dataclass(frozen=True)
class Instants:
    """Instants to look up: int64 microseconds since the epoch and which are known (not null).
    Converted from a Datetime series once and shifted in numpy, so the look-ups at several
    horizons after the same instants cost one conversion."""

    us: np.ndarray
    known: np.ndarray

    @staticmethod
    def of(values: pl.Series) -> Instants:
        return Instants(instants_us(values), values.is_not_null().to_numpy())

    def later(self, seconds: int) -> Instants:
        """The same instants `seconds` later (as adding a timedelta to the series would)."""
        return Instants(self.us + seconds * US_PER_S, self.known)


@dataclass
class Timeline:
    """Rows of one table (quotes or prints) sorted by trade date, symbol and time, with keys.

    `frame` keeps landing order among equal timestamps; `_qi` is the row's position and `_gid`
    its group id (the trade_date and symbol columns are dropped: the group id stands for them).
    """

    frame: pl.DataFrame
    groups: Groups
    gid: np.ndarray
    keys: np.ndarray
    origins: np.ndarray  # per group id: the first row's instant (us), where offsets count from
    # The keys with their positions: the right side of the merged look-ups (`_last_before`).
    # Built here, not on first use, so that look-ups on several threads share one.
    row_keys: pl.DataFrame = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.row_keys = pl.DataFrame({"_key": self.keys}).with_row_index("_row").set_sorted("_key")

    def ids(self, frame: pl.DataFrame) -> np.ndarray:
        """Group ids of the rows of another frame (with trade_date and symbol) in this timeline."""
        return self.groups.ids(frame)

    def lookup(self, gid: np.ndarray, instants: pl.Series | Instants, *, strict: bool) -> pl.Series:
        """Row positions (UInt32, null where none) of the last row of the same group at `instants`:
        `ts < instant` when strict, `ts <= instant` otherwise; a null instant finds nothing."""
        if isinstance(instants, pl.Series):
            instants = Instants.of(instants)
        g = np.maximum(gid, 0)
        offset = instants.us - self.origins[g] if self.origins.size else g
        # Clipping keeps a far-away instant inside its group: before all of its rows, or after.
        keys = g * SPAN + np.clip(offset, -1, SPAN - 1)
        pos = self._last_before(keys, strict=strict)
        safe = np.maximum(pos, 0)
        found = (pos >= 0) & (gid >= 0) & instants.known
        found &= self.gid[safe] == gid if self.gid.size else False
        return pl.Series(safe, dtype=pl.UInt32).scatter(np.flatnonzero(~found), None)

    def _last_before(self, keys: np.ndarray, *, strict: bool) -> np.ndarray:
        """Per key, the position of the last row whose key is below it (strict) or at most it,
        -1 where there is none; among equal keys the last row.

        The keys are searched in ascending order: keys out of order (an order's instants) are
        sorted first, which turns the random probes of 2.6M row keys into nearby ones (10.5k
        orders of a day: 0.5 ms against 4.3). Many ascending keys (a partition's fills, in
        their (group, time) order, and any shift of them) are merged with the row keys by
        Polars' backward as-of join, 2-3x faster than a binary search per key (500k fills in
        2.6M quotes: 6.5 ms against 16); the merge walks the rows, so fewer keys (below 1/64 of
        the rows: 10k in 2.6M, 2 ms against 0.8) are binary searched. Every path gives the same
        positions."""
        if keys.size > 1 and not bool((keys[1:] >= keys[:-1]).all()):
            order = np.argsort(keys, kind="stable")
            found = np.empty(keys.size, dtype=np.int64)
            found[order] = self._last_before(keys[order], strict=strict)
            return found
        if keys.size > 1 and keys.size * MERGE_FRACTION >= self.keys.size:
            left = pl.DataFrame({"_key": keys}).set_sorted("_key")
            found = left.join_asof(
                self.row_keys,
                on="_key",
                strategy="backward",
                allow_exact_matches=not strict,
                check_sortedness=False,  # both sides are ascending, checked or by construction
            )
            return found["_row"].cast(pl.Int64).fill_null(-1).to_numpy()
        return np.searchsorted(self.keys, keys, side="left" if strict else "right") - 1

    def take(self, positions: pl.Series, columns: dict[str, str]) -> list[pl.Series]:
        """Columns of the rows at `positions` (nulls stay null), renamed as `columns` says."""
        return [self.frame[c].gather(positions).alias(a) for c, a in columns.items()]


def _timeline(frame: pl.DataFrame, ts: str = "ts") -> Timeline:
    frame = frame.filter(pl.col("trade_date").is_not_null() & pl.col("symbol").is_not_null())
    groups = Groups.of(frame)
    gid = groups.ids(frame)
    # The group id stands for (trade_date, symbol) from here on; one chunk makes gathers cheap
    # (a gather over the many chunks of a multi-file read is several times slower).
    frame = frame.drop(GROUP).rechunk()
    t = instants_us(frame[ts])
    if not _in_order(gid, t):
        frame, gid, t = _regroup(frame, gid, t, ts)
    n = len(groups.symbols) * groups.days.size
    first = np.minimum(np.searchsorted(gid, np.arange(n)), max(gid.size - 1, 0))
    origins = t[first] if gid.size else np.zeros(n, dtype=np.int64)
    offset = t - origins[gid] if gid.size else t
    if offset.size and offset.max() >= SPAN - 1:
        raise ValueError(
            f"the {ts} values of one trade date and symbol span more than 12 days; "
            "check the timestamps landed for that date"
        )
    frame = frame.with_columns(_gid=pl.Series(gid)).with_row_index("_qi")
    return Timeline(frame, groups, gid, gid * SPAN + offset, origins)


def _regroup(
    frame: pl.DataFrame, gid: np.ndarray, t: np.ndarray, ts: str
) -> tuple[pl.DataFrame, np.ndarray, np.ndarray]:
    """The rows in (group, time) order, stable. First by group alone (radix sort), which is
    enough when each group's rows landed in time order (a consolidated feed, or per-symbol
    blocks in any order); the sorted times come from the gathered frame, so nothing is
    gathered twice. Otherwise by the full key."""
    order = group_order(gid)
    if order is not None:
        grouped = frame[order]
        g, tt = _sorted_groups(gid, order), instants_us(grouped[ts])
        if _within_groups_in_order(g, tt):
            return grouped, g, tt
    order = _key_order(gid, t)
    return frame[order], gid[order], t[order]


def _in_order(major: np.ndarray, minor: np.ndarray) -> bool:
    return bool(
        ((major[1:] > major[:-1]) | ((major[1:] == major[:-1]) & (minor[1:] >= minor[:-1]))).all()
    )


def _within_groups_in_order(major: np.ndarray, minor: np.ndarray) -> bool:
    """`minor` ascends within each run of `major` (`major` already grouped)."""
    return bool(((major[1:] != major[:-1]) | (minor[1:] >= minor[:-1])).all())


def _sorted_groups(major: np.ndarray, order: np.ndarray) -> np.ndarray:
    """`major[order]` for a stable sort of `major`: from the counts when the ids are dense (no
    random-access gather), else gathered."""
    if major.size and int(major.max()) < 4 * major.size:
        counts = np.bincount(major)
        return np.repeat(np.arange(counts.size, dtype=major.dtype), counts)
    return major[order]


def _key_order(major: np.ndarray, minor: np.ndarray) -> np.ndarray:
    """Stable argsort by (major, minor): one stable sort of `major * span + minor - min(minor)`
    when that fits an int64 (the usual case), else `numpy.lexsort`."""
    lo, hi = int(minor.min()), int(minor.max())
    span = hi - lo + 1
    top = int(major.max())
    if int(major.min()) >= 0 and span < (1 << 62) and (top + 1) * span < (1 << 62):
        return np.argsort(major * span + (minor - lo), kind="stable")
    return np.lexsort((minor, major))


def stable_order(major: np.ndarray, minor: np.ndarray) -> np.ndarray:
    """Stable argsort by (major, minor), two int64 arrays of non-negative `major`.

    Rows usually land in time order (a consolidated feed) or in per-symbol blocks already in
    time order, so `minor` is almost always sorted within each `major` value once the rows are
    grouped: a stable radix sort of `major` alone (`group_order`) is tried first and kept if it
    leaves `minor` ordered within groups; otherwise `_key_order`. The same permutation in every
    case.
    """
    if _in_order(major, minor):
        return np.arange(major.size, dtype=np.int64)
    order = group_order(major)
    if order is not None and _within_groups_in_order(_sorted_groups(major, order), minor[order]):
        return order
    return _key_order(major, minor)


def group_order(major: np.ndarray) -> np.ndarray | None:
    """Stable argsort of non-negative integers below 2**32 by LSD radix sort, or None if out of
    range. NumPy's stable sort of 16-bit integers is a radix sort, several times faster than
    its timsort of int64 (2.6M group ids: about 20 ms against 190); a second 16-bit pass
    covers ids up to 2**32."""
    if not major.size:
        return np.arange(0, dtype=np.int64)
    lo, hi = int(major.min()), int(major.max())
    if lo < 0 or hi >= 1 << 32:
        return None
    order = np.argsort((major & 0xFFFF).astype(np.uint16), kind="stable")
    if hi >= 1 << 16:
        high = (major[order] >> 16).astype(np.uint16)
        order = order[np.argsort(high, kind="stable")]
    return order


class Segments:
    """Runs of equal group id in a timeline's (sorted) `gid`: per-group firsts and running sums
    in numpy, the same values as Polars' `first().over()` / `cum_sum().over()` (sums are added
    in row order within each group, from zero), without hashing the group column."""

    def __init__(self, gid: np.ndarray) -> None:
        self.starts = np.flatnonzero(np.r_[True, gid[1:] != gid[:-1]]) if gid.size else gid
        self.lengths = np.diff(np.r_[self.starts, gid.size])

    def first(self, values: np.ndarray) -> np.ndarray:
        """Each row's group's first value."""
        return np.repeat(values[self.starts], self.lengths)

    def cum_sum(self, values: np.ndarray) -> np.ndarray:
        """Running sum within each group, including the row."""
        out = np.empty(values.size, dtype=np.float64)
        for start, length in zip(self.starts.tolist(), self.lengths.tolist(), strict=True):
            np.cumsum(values[start : start + length], out=out[start : start + length])
        return out

    def step_starts(self) -> np.ndarray:
        """True on the first row of each group."""
        mask = np.zeros(int(self.lengths.sum()), dtype=bool)
        mask[self.starts] = True
        return mask


def prepare_quotes(quotes: pl.DataFrame | pl.LazyFrame) -> Timeline:
    """Quotes sorted by symbol and time (ties in landing order) with their mid.

    Adds the columns the interval TWAP needs: `_qi` (the row's position), `_ref` (the symbol's
    first mid) and `_area_before` (the time integral of `mid - _ref`, in price x seconds, from
    the symbol's first quote to this quote's `ts`).
    """
    frame = eager(quotes).select(*GROUP, "ts", "bid_px", "ask_px", "bid_sz", "ask_sz")
    line = _timeline(frame)
    seg = Segments(line.gid)
    mid = ((line.frame["bid_px"] + line.frame["ask_px"]) / 2).to_numpy()
    ref = seg.first(mid)
    t = instants_us(line.frame["ts"])
    # Quote i holds from its ts to the next quote's: (mid_i - ref) x seconds, summed over the
    # group's quotes before this one.
    held = np.zeros(mid.size)
    held[1:] = (mid[:-1] - ref[:-1]) * (np.diff(t).astype(np.float64) / US_PER_S)
    held[seg.step_starts()] = 0.0
    line.frame = line.frame.with_columns(
        mid=pl.Series(mid), _ref=pl.Series(ref), _area_before=pl.Series(seg.cum_sum(held))
    )
    return line


def prepare_trades(trades: pl.DataFrame | pl.LazyFrame) -> Timeline:
    """Tape sorted by symbol and time with cumulative volume and price x volume.

    `_cum_dpv` accumulates `(price - _ref) * size` with `_ref` the symbol's first print, so
    `VWAP = _ref + d(_cum_dpv) / d(_cum_v)` over an interval.
    """
    frame = eager(trades).select(*GROUP, "ts", "price", "size")
    line = _timeline(frame)
    seg = Segments(line.gid)
    price, size = line.frame["price"].to_numpy(), line.frame["size"].to_numpy()
    tref = seg.first(price)
    line.frame = line.frame.with_columns(
        _tref=pl.Series(tref),
        _cum_v=pl.Series(seg.cum_sum(size)),
        _cum_dpv=pl.Series(seg.cum_sum((price - tref) * size)),
    )
    return line


def eager(frame: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    return frame.collect() if isinstance(frame, pl.LazyFrame) else frame


def seconds_between(start: pl.Expr, end: pl.Expr) -> pl.Expr:
    """end - start in (fractional) seconds."""
    return (end - start).dt.total_microseconds().cast(pl.Float64) / US_PER_S
