"""Row rules of ingestion: which landed rows are staged and which are quarantined, and why.

Every rule is a Polars boolean expression evaluated over the whole frame; a row collects the code
of every rule it breaks (see docs/INGESTION.md for the list). Rules are added as flag columns in
dependency order: the generic contract rules and duplicate keys first, then the cross-table rules
that look at the partition's *good* rows (a child order must belong to a staged order, a fill's
prevailing quote must be a staged quote), and last the overfill rule, computed over fills that
broke nothing else. Rows with no reason are staged; the others go to quarantine with their
original JSON. Identical duplicates (same key, all contract columns equal, no value that failed
coercion) collapse to their first row and are counted, so landed = staged + quarantined +
collapsed for every table.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

from eqs_pipeline.core.contract import CONTRACT, TableContract
from eqs_pipeline.core.keys import hashes_distinct
from eqs_pipeline.core.ranges import symbol_ranges
from eqs_pipeline.core.settings import IngestSettings
from eqs_pipeline.ingest import kernels
from eqs_pipeline.ingest import plausibility as bounds
from eqs_pipeline.ingest.read import REASONS, SOURCE_FILE, SOURCE_ROW, original_rows, raw_schema
from eqs_pipeline.ingest.result import (
    COUNTS_SCHEMA,
    QUARANTINE_SCHEMA,
    IngestResult,
    staged_schema,
)

FLAG = "__rule__:"  # prefix of the temporary flag columns; the rest of the name is the code
# Cumulative fill quantities are float sums; a relative slack keeps 0.1 + 0.2 from "overfilling" 0.3.
OVERFILL_RELATIVE_TOLERANCE = 1e-9
PARTITION_TABLES = ("orders", "child_orders", "executions", "quotes", "market_trades")


def _flag(code: str, condition: pl.Expr) -> pl.Expr:
    return condition.fill_null(False).alias(FLAG + code)


def _flags(df: pl.DataFrame) -> list[str]:
    return [c for c in df.columns if c.startswith(FLAG)]


def _is_bad(df: pl.DataFrame) -> pl.Expr:
    return pl.any_horizontal(pl.col(REASONS).list.len() > 0, *[pl.col(c) for c in _flags(df)])


def _absent(name: str) -> pl.Expr:
    """Null because it was not given (a value that failed coercion is `bad_value`, not absent)."""
    return pl.col(name).is_null() & ~pl.col(REASONS).list.contains(f"bad_value:{name}")


def _contract_flags(contract: TableContract) -> list[pl.Expr]:
    """missing:<col>, non_positive:<col> and unknown_value:<col> for every contract column."""
    flags = [_flag(f"missing:{c}", _absent(c)) for c in contract.required]
    flags += [
        _flag(f"non_positive:{c.name}", pl.col(c.name) <= 0) for c in contract.columns if c.positive
    ]
    flags += [
        _flag(
            f"unknown_value:{c.name}",
            pl.col(c.name).is_not_null() & ~pl.col(c.name).is_in(pl.lit(list(c.allowed))),
        )
        for c in contract.columns
        if c.allowed
    ]
    return flags


def _collapse_duplicates(
    df: pl.DataFrame, contract: TableContract
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Drop identical duplicates but their first row; flag every row of a conflicting key.

    Returns the remaining rows (with the `duplicate_key_conflict` flag) and the number of
    collapsed rows per source file. Rows whose key has a null are left to `missing:<key>`.
    """
    key = list(contract.key)
    if not key:
        return df, _none_collapsed()
    if _distinct_keys(df, key):
        # No key landed twice (the usual day): nothing to collapse and no conflict, found from
        # the key alone instead of hashing every row whole (a day of 200k fills and 230k child
        # orders: 30 ms against 355).
        return df.with_columns(_flag("duplicate_key_conflict", pl.lit(False))), _none_collapsed()
    return _collapse_repeated_keys(df, contract)


def _distinct_keys(df: pl.DataFrame, key: list[str]) -> bool:
    """Whether no key (rows with a null in it aside) is landed twice."""
    has_key = pl.all_horizontal(pl.col(k).is_not_null() for k in key)
    keyed = df.select(key).filter(has_key)
    if len(key) == 1:
        # Ids landed in increasing order (a sequence, as most files hold them) are distinct:
        # one comparison of neighbours instead of hashing them all (2M fill ids: 25 ms).
        ids = keyed.get_column(key[0])
        if ids.len() < 2 or (ids.slice(1) > ids.slice(0, ids.len() - 1)).all():
            return True
    if hashes_distinct(keyed, key):
        return True
    return not keyed.is_duplicated().any()


def _none_collapsed() -> pl.DataFrame:
    return pl.DataFrame(schema={SOURCE_FILE: pl.String, "collapsed": pl.Int64})


def _collapse_repeated_keys(
    df: pl.DataFrame, contract: TableContract
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """`_collapse_duplicates` of a table where some key landed more than once.

    Only the rows of a repeated key are compared whole: a key landed once is neither collapsed
    nor a conflict, and hashing every row of a day whole for a few dozen resent rows cost
    seconds (2M fills and 2.3M child orders: 7 s against 1.3 s)."""
    key = list(contract.key)
    has_key = pl.all_horizontal(pl.col(k).is_not_null() for k in key)
    repeated = df.select((has_key & (pl.len().over(key) > 1)).alias("r")).to_series()
    rows = df.with_row_index("__position").filter(repeated)
    # A row with a value that failed coercion is identical to no other row: the value is null in
    # the frame whatever its text was ("abc" or "12,5"), so two such rows may differ in what the
    # frame no longer shows, and collapsing one would lose its original text. Such a row of a
    # repeated key is a conflict (and is quarantined for its bad value anyway).
    unique_if_bad = pl.when(pl.col(REASONS).list.len() > 0).then(pl.int_range(pl.len()))
    identity = [*contract.names, "__bad_row"]
    marked = rows.with_columns(unique_if_bad.alias("__bad_row")).select(
        "__position",
        SOURCE_FILE,
        (pl.len().over(key) > pl.len().over(identity)).alias("__conflict"),
        (pl.int_range(pl.len()).over(identity) == 0).alias("__first"),
    )
    conflict = np.zeros(df.height, bool)
    conflict[marked.filter(pl.col("__conflict")).get_column("__position").to_numpy()] = True
    collapsed = marked.filter(~pl.col("__conflict") & ~pl.col("__first"))
    keep = np.ones(df.height, bool)
    keep[collapsed.get_column("__position").to_numpy()] = False
    counts = collapsed.group_by(SOURCE_FILE).agg(pl.len().cast(pl.Int64).alias("collapsed"))
    kept = df.with_columns(pl.Series(FLAG + "duplicate_key_conflict", conflict)).filter(keep)
    return kept, counts


def _split(
    raw: pl.DataFrame,
    flagged: pl.DataFrame,
    collapsed: pl.DataFrame,
    contract: TableContract,
    trade_date: date | None,
    landing: str | Path,
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Staged rows, quarantined rows (reasons in rule order, original text re-read from the
    landing files) and per-file counts."""
    flags = _flags(flagged)
    bad = _is_bad(flagged)
    day = pl.lit(trade_date, pl.Date)
    staged_cols = [*contract.names, *(["trade_date"] if contract.dated else []), "source_file"]
    staged = (
        flagged.filter(~bad)
        .with_columns(day.alias("trade_date"), pl.col(SOURCE_FILE).alias("source_file"))
        .select(staged_cols)
    )
    rule_reasons = [pl.when(pl.col(f)).then(pl.lit(f.removeprefix(FLAG))) for f in flags]
    quarantine = flagged.filter(bad).select(
        pl.lit(contract.name, pl.String).alias("source_table"),
        day.alias("trade_date"),
        pl.col(SOURCE_FILE).alias("source_file"),
        pl.col(SOURCE_ROW).alias("source_row"),
        pl.lit(None, pl.String).alias("row_json"),
        pl.concat_list(pl.col(REASONS), *rule_reasons).list.drop_nulls().alias("reasons"),
    )
    quarantine = quarantine.with_columns(row_json=original_rows(landing, contract.name, quarantine))
    landed = raw.group_by(SOURCE_FILE).agg(pl.len().cast(pl.Int64).alias("landed_rows"))
    per_file = [
        staged.group_by("source_file").agg(pl.len().cast(pl.Int64).alias("staged_rows")),
        quarantine.group_by("source_file").agg(pl.len().cast(pl.Int64).alias("quarantined_rows")),
        collapsed.rename({SOURCE_FILE: "source_file", "collapsed": "collapsed_duplicates"}),
    ]
    counts = landed.rename({SOURCE_FILE: "source_file"})
    for part in per_file:
        counts = counts.join(part, on="source_file", how="left")
    counts = (
        counts.with_columns(
            pl.lit(contract.name).alias("source_table"),
            day.alias("trade_date"),
            pl.col("staged_rows", "quarantined_rows", "collapsed_duplicates").fill_null(0),
        )
        .select(list(COUNTS_SCHEMA))
        .sort("source_file")
        .cast(COUNTS_SCHEMA)
    )
    return staged.cast(staged_schema(contract.name)), quarantine.cast(QUARANTINE_SCHEMA), counts


def _lookup(
    df: pl.DataFrame, other: pl.DataFrame, on: str, columns: dict[str, str]
) -> pl.DataFrame:
    """Left-join `columns` (source name -> new name) of `other` by `on`, plus a `__found_<on>` flag."""
    right = other.select(
        pl.col(on),
        *(pl.col(k).alias(v) for k, v in columns.items()),
        pl.lit(True).alias(f"__found_{on}"),
    )
    return df.join(right, on=on, how="left", maintain_order="left").with_columns(
        pl.col(f"__found_{on}").fill_null(False)
    )


# Control characters: C0 and C1 (a newline, a NUL), and the Unicode line separators and
# bidirectional overrides that make a value print as another (an RTL override).
CONTROL_CHARACTERS = r"[\x00-\x1F\x7F-\x9F\x{200E}\x{200F}\x{2028}-\x{202E}\x{2066}-\x{2069}]"


def _text_flags(
    kept: pl.DataFrame, contract: TableContract, settings: IngestSettings
) -> list[pl.Expr]:
    """bad_text:<col> for the identifier columns: a control character or more than
    `settings.max_identifier_chars` characters. Tested on each column's distinct values (a day
    of quotes names a few thousand symbols in millions of rows), unless the column's bytes show
    that none can break the rule (`kernels.plain_text`: short printable ASCII, the usual day:
    hashing 2M fill ids to their distinct values alone cost 0.6 s)."""
    flags = []
    for column in contract.columns:
        if not column.identifier or column.name not in kept.columns:
            continue
        if kernels.plain_text(kept.get_column(column.name), settings.max_identifier_chars):
            continue
        values = kept.get_column(column.name).drop_nulls().unique()
        bad = values.filter(
            values.str.contains(CONTROL_CHARACTERS)
            | (values.str.len_chars() > settings.max_identifier_chars)
        )
        if bad.len():
            flags.append(_flag(f"bad_text:{column.name}", pl.col(column.name).is_in(bad.implode())))
    return flags


def _validate_table(
    raw: pl.DataFrame, contract: TableContract, settings: IngestSettings
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Duplicate keys and the contract rules over a `read_table` frame; returns (kept, collapsed)."""
    _check_raw(raw, contract)
    kept, collapsed = _collapse_duplicates(raw, contract)
    flags = [*_contract_flags(contract), *_text_flags(kept, contract, settings)]
    return kept.with_columns(*flags), collapsed


def _check_raw(raw: pl.DataFrame, contract: TableContract) -> None:
    expected = raw_schema(contract.name)
    missing = [c for c in expected if c not in raw.columns]
    if missing:
        raise ValueError(f"{contract.name}: not a read_table frame, it lacks {missing}")


def validate_instruments(
    instruments_raw: pl.DataFrame,
    settings: IngestSettings = IngestSettings(),  # noqa: B008 (frozen dataclass, safe default)
    *,
    landing: str | Path,
) -> IngestResult:
    """Validate the landed instruments (contract rules and duplicate symbols).

    `landing` is the directory `instruments_raw` was read from (quarantined rows quote it).
    """
    contract = CONTRACT["instruments"]
    kept, collapsed = _validate_table(instruments_raw, contract, settings)
    kept = kept.with_columns(
        _flag(
            "implausible_value:daily_volatility",
            pl.col("daily_volatility") > settings.max_daily_volatility,
        ),
        _flag(
            "implausible_value:adv_shares",
            (pl.col("adv_shares") > 0)
            & ~pl.col("adv_shares").is_between(settings.min_adv_shares, settings.max_adv_shares),
        ),
        _flag(
            "implausible_value:tick_size",
            pl.col("tick_size") > settings.max_price,
        ),
    )
    staged, quarantine, counts = _split(instruments_raw, kept, collapsed, contract, None, landing)
    return IngestResult({"instruments": staged}, quarantine, counts)


@dataclass(frozen=True)
class _Limits:
    """The per-symbol bounds of one trade date (`plausibility.symbol_limits`); once the quotes
    are staged, `with_quote_range` adds the range prices must lie in."""

    table: pl.DataFrame
    trade_date: date
    settings: IngestSettings

    def with_quote_range(self, good_quotes: pl.DataFrame) -> _Limits:
        prices = bounds.quote_range(good_quotes, self.settings)
        table = self.table.drop(bounds.PX_LOW, bounds.PX_HIGH).join(
            prices, on="symbol", how="full", coalesce=True
        )
        return replace(self, table=table)

    def date_bound(self, column: str) -> bounds.Bound:
        return bounds.date_bound(column, self.trade_date, self.settings)

    def flag(
        self, df: pl.DataFrame, checked: list[bounds.Bound], key: str = "symbol"
    ) -> pl.DataFrame:
        return bounds.with_bound_flags(df, self.table, checked, FLAG, key)


def _quotes(kept: pl.DataFrame, limits: _Limits) -> pl.DataFrame:
    """crossed_quote, then the sizes, the bid and ask against the symbol's median mid of the day
    (landed quotes, `price_band_factor` either way) and the trade-date window."""
    f = limits.settings.price_band_factor
    df = kept.with_columns(_flag("crossed_quote", pl.col("bid_px") > pl.col("ask_px")))
    mid = pl.col(bounds.MID)
    checked = [
        *bounds.size_bounds(limits.settings, "bid_sz", "ask_sz"),
        bounds.Bound(
            "implausible_price:bid_px",
            bounds.positive("bid_px"),
            low=bounds.absolute_low(limits.settings, mid / f),
        ),
        bounds.Bound(
            "implausible_price:ask_px",
            bounds.positive("ask_px"),
            high=bounds.absolute_high(limits.settings, mid * f),
        ),
        limits.date_bound("ts"),
    ]
    table = limits.table.join(bounds.median_mids(kept), on="symbol", how="full", coalesce=True)
    return bounds.with_bound_flags(df, table, checked, FLAG)


def _orders(raw: pl.DataFrame, instruments: pl.DataFrame | None, limits: _Limits) -> pl.DataFrame:
    flags = [
        _flag("limit_without_price", (pl.col("order_type") == "LIMIT") & _absent("limit_price")),
        _flag("end_before_arrival", pl.col("end_ts") < pl.col("arrival_ts")),
        # The wheel's probability of the algo drawn: an analysis weighs the order by its
        # inverse, so 0 (or less) and more than 1 are not probabilities it can use.
        _flag(
            "allocation_prob_out_of_range",
            (pl.col("allocation_prob") <= 0) | (pl.col("allocation_prob") > 1),
        ),
    ]
    df = raw.with_columns(*flags)
    df = df if instruments is None else _with_symbol_rule(df, instruments)
    return limits.flag(
        df,
        [
            *bounds.size_bounds(limits.settings, "order_qty"),
            *bounds.price_bounds(limits.settings, "limit_price"),
            limits.date_bound("arrival_ts"),
        ],
    )


def _with_symbol_rule(df: pl.DataFrame, instruments: pl.DataFrame) -> pl.DataFrame:
    known = instruments.select(pl.col("symbol").drop_nulls().unique())
    df = _lookup(df, known, "symbol", {})
    return df.with_columns(
        _flag("unknown_symbol", pl.col("symbol").is_not_null() & ~pl.col("__found_symbol"))
    ).drop("__found_symbol")


def _child_orders(df: pl.DataFrame, good_orders: pl.DataFrame, limits: _Limits) -> pl.DataFrame:
    order_cols = {"arrival_ts": "__arrival_ts", "symbol": "__o_symbol"}
    df = _lookup(df, good_orders, "order_id", order_cols)
    df = df.with_columns(
        _flag("unknown_order", pl.col("order_id").is_not_null() & ~pl.col("__found_order_id")),
        _flag("before_arrival", pl.col("sent_ts") < pl.col("__arrival_ts")),
        _flag("end_before_sent", pl.col("end_ts") < pl.col("sent_ts")),
    )
    # A child names no symbol: its bounds are those of its order's.
    checked = [
        *bounds.size_bounds(limits.settings, "qty"),
        *bounds.price_bounds(limits.settings, "limit_price"),
        limits.date_bound("sent_ts"),
    ]
    df = limits.flag(df, checked, key="__o_symbol")
    return df.drop(*order_cols.values(), "__found_order_id")


def _prevailing_mid(df: pl.DataFrame, good_quotes: pl.DataFrame, chunk_fills: int) -> pl.Series:
    """Mid of the last good quote of the fill's symbol with ts strictly before exec_ts; of quotes
    of equal `ts` the last landed prevails. Null where there is none.

    Symbols become their rank among the traded ones and each fill and quote one integer key,
    (rank, time), searched with `kernels.last_before`: Polars' as-of join by symbol needed the
    date's quotes sorted by time and grouped by their text symbol (a day of 10M quotes and 2M
    fills: 2.8 s against 0.9 s). A date of more than `chunk_fills` fills is looked up in
    contiguous symbol ranges of at most that many (`core.ranges.symbol_ranges`), each with its
    own quotes: the sorted keys of a date's quotes are the largest things the look-up holds
    (a date of 5.0M fills and 26M quotes, docs/SCALING.md).
    """
    symbol, exec_ts = df.get_column("symbol"), df.get_column("exec_ts")
    looked_up = symbol.is_not_null() & exec_ts.is_not_null()
    traded = symbol.filter(looked_up).unique().sort()
    quote_row = np.full(df.height, -1, np.int64)
    if traded.len() and good_quotes.height:
        ranks = pl.Enum(traded)
        fill_rank = np.where(looked_up.to_numpy(), _ranks(symbol, ranks, runs=False), -1)
        fill_ts = _micros(exec_ts)
        quote_ts = good_quotes.get_column("ts")
        quote_rank = _ranks(good_quotes.get_column("symbol"), ranks, runs=True)
        if quote_ts.null_count():
            quote_rank[quote_ts.is_null().to_numpy()] = -1
        quote_ts = _micros(quote_ts)
        per_symbol = pl.DataFrame(
            {
                "symbol": traded,
                "fills": np.bincount(fill_rank[fill_rank >= 0], minlength=len(traded)),
            }
        )
        position = {s: i for i, s in enumerate(traded.to_list())}
        for first, last in symbol_ranges(per_symbol, chunk_fills):
            low, high = position[first], position[last]
            fills = _between(fill_rank, low, high)
            quotes = _between(quote_rank, low, high)
            found = kernels.last_before(
                quote_rank[quotes] - low, quote_ts[quotes], fill_rank[fills] - low, fill_ts[fills]
            )
            hit = found >= 0
            quote_row[fills[hit]] = quotes[found[hit]]
            del quotes, found
    return _mids(good_quotes, quote_row)


def _mids(quotes: pl.DataFrame, rows: np.ndarray) -> pl.Series:
    """(bid_px + ask_px) / 2 of the quotes' `rows`, null where the row is -1. Gathered in NumPy
    (2M fills: 0.1 s against 0.3 s for Polars' gather with null rows) unless a price is null
    (never in staged quotes), which Polars keeps null."""
    bid, ask = quotes.get_column("bid_px"), quotes.get_column("ask_px")
    none = np.flatnonzero(rows < 0)
    if none.size == rows.size:
        return pl.Series("__mid", [None] * rows.size, pl.Float64)
    if bid.null_count() or ask.null_count():
        row = pl.col("__row")
        index = pl.DataFrame({"__row": rows}).select(pl.when(row >= 0).then(row)).to_series()
        bid_ask = quotes.select(pl.col("bid_px", "ask_px").gather(index))
        return bid_ask.select((pl.col("bid_px") + pl.col("ask_px")) / 2).to_series().alias("__mid")
    at = np.where(rows >= 0, rows, 0)
    mid = (bid.to_numpy()[at] + ask.to_numpy()[at]) / 2
    return pl.Series("__mid", mid).scatter(none, None)


def _ranks(values: pl.Series, ranks: pl.Enum, *, runs: bool) -> np.ndarray:
    """Each value's position among the categories of `ranks` (int32), -1 for null or absent.
    With `runs`, looked up once per run of equal values: quotes land in long runs of a symbol
    (10M quotes: 70 ms against 200)."""
    if not runs:
        return _enum_codes(values, ranks)
    run = values.rle()
    return np.repeat(
        _enum_codes(run.struct.field("value"), ranks), run.struct.field("len").to_numpy()
    )


def _enum_codes(values: pl.Series, ranks: pl.Enum) -> np.ndarray:
    codes = values.cast(ranks, strict=False).to_physical().cast(pl.Int32).fill_null(-1)
    return codes.to_numpy()


def _micros(ts: pl.Series) -> np.ndarray:
    """UTC microseconds as int64 (0 where null)."""
    return ts.dt.cast_time_unit("us").to_physical().fill_null(0).to_numpy()


def _between(ranks: np.ndarray, low: int, high: int) -> np.ndarray:
    """Positions of the ranks in [low, high]."""
    return np.flatnonzero((ranks >= low) & (ranks <= high))


def _executions(
    df: pl.DataFrame,
    good_orders: pl.DataFrame,
    good_children: pl.DataFrame,
    good_quotes: pl.DataFrame,
    settings: IngestSettings,
    limits: _Limits,
) -> pl.DataFrame:
    order_cols = {
        "symbol": "__o_symbol",
        "arrival_ts": "__o_arrival",
        "order_qty": "__o_qty",
        "__row": "__o_row",
    }
    # A fill's order and child order by their row in the staged tables: integer keys for the
    # overfill rules.
    df = _lookup(df, good_orders.with_row_index("__row"), "order_id", order_cols)
    child_cols = {"order_id": "__c_order_id", "qty": "__c_qty", "__row": "__c_row"}
    df = _lookup(df, good_children.with_row_index("__row"), "child_id", child_cols)
    df = df.with_columns(_prevailing_mid(df, good_quotes, settings.chunk_fills).alias("__mid"))
    deviation = (pl.col("price") - pl.col("__mid")).abs() / pl.col("__mid")
    df = df.with_columns(
        _flag("unknown_order", pl.col("order_id").is_not_null() & ~pl.col("__found_order_id")),
        _flag("unknown_child", pl.col("child_id").is_not_null() & ~pl.col("__found_child_id")),
        _flag("child_order_mismatch", pl.col("__c_order_id") != pl.col("order_id")),
        _flag("symbol_mismatch", pl.col("symbol") != pl.col("__o_symbol")),
        _flag("before_arrival", pl.col("exec_ts") < pl.col("__o_arrival")),
        _flag("bad_print", deviation > settings.max_price_deviation),
        _flag("implausible_fee", bounds.fee_bound(settings)),
    )
    checked = [
        *bounds.size_bounds(limits.settings, "qty"),
        *bounds.price_bounds(limits.settings, "price"),
        limits.date_bound("exec_ts"),
    ]
    df = limits.flag(df, checked)
    ok = df.select(~_is_bad(df)).to_series().to_numpy()
    df = df.with_columns(
        pl.Series(FLAG + "overfill", _overfilled(df, ok, "__o_row", "__o_qty")),
        # The venue's fill rate (executed / routed) is only meaningful if a child order's fills
        # never exceed what was routed to it.
        pl.Series(FLAG + "child_overfill", _overfilled(df, ok, "__c_row", "__c_qty")),
    )
    return df.drop(
        *order_cols.values(),
        *child_cols.values(),
        "__mid",
        "__found_order_id",
        "__found_child_id",
    )


def _overfilled(df: pl.DataFrame, ok: np.ndarray, key: str, limit: str) -> np.ndarray:
    """The overfill rule of one key (a fill's order or child order, `key` its row in the staged
    table, null without one): among the fills that broke nothing else (`ok`), per key in
    (exec_ts, exec_id) order, the fill whose cumulative quantity first exceeds `limit` (times
    the tolerance) and every fill after it.

    Fills that broke another rule add nothing to a key's sum, so only the good ones are summed.
    They are ordered by one integer sort of (key, exec_ts), exec_id deciding only between fills
    of a key at the same instant (`kernels.key_time_order`), and summed per key in that order
    (`kernels.run_cum_sum`): Polars' `cum_sum().over(key, order_by=[exec_ts, exec_id])` sorted
    2M fills by their text ids and summed per group (2.3M child orders: 3.4 s for both rules
    against 0.6 s).
    """
    flagged = np.zeros(df.height, bool)
    keys = df.get_column(key)
    rows = np.flatnonzero(ok & keys.is_not_null().to_numpy())
    if rows.size == 0:
        return flagged
    code = keys.gather(rows).to_numpy()
    order = kernels.key_time_order(
        code, _micros(df.get_column("exec_ts").gather(rows)), df.get_column("exec_id").gather(rows)
    )
    rows, code = rows[order], code[order]
    starts = np.ones(rows.size, bool)
    starts[1:] = code[1:] != code[:-1]
    filled = kernels.run_cum_sum(df.get_column("qty").gather(rows).to_numpy(), starts)
    allowed = df.get_column(limit).gather(rows).to_numpy()  # null (NaN): never exceeded
    tolerance = 1 + OVERFILL_RELATIVE_TOLERANCE
    flagged[rows[filled > allowed * tolerance]] = True
    return flagged


def validate_partition(
    raw: Mapping[str, pl.DataFrame] | Callable[[str], pl.DataFrame],
    trade_date: date,
    instruments: pl.DataFrame | None,
    settings: IngestSettings = IngestSettings(),  # noqa: B008 (frozen dataclass, safe default)
    *,
    landing: str | Path,
) -> IngestResult:
    """Validate one trade date's tables (outputs of `read_table`) against the row rules.

    `raw` maps a table to its landed frame (a table missing from it counts as landed with no
    rows), or reads it: `raw(table)`. Read that way, each table is read when its rules need it
    and let go once its rows are staged, so the landed tables are never all held at once
    beside their staged rows (with the prevailing mids looked up in symbol ranges, a date of
    5.0M fills stages in 6.5 GiB at the peak instead of 8.0; docs/SCALING.md).
    `instruments` is the staged instruments table; when given, orders of symbols it lacks are
    quarantined (`unknown_symbol`). `landing` is the directory `raw` was read from
    (quarantined rows quote their original text).
    """
    if callable(raw):
        read = raw
    else:
        unknown = set(raw) - set(PARTITION_TABLES)
        if unknown:
            raise ValueError(f"validate_partition takes {PARTITION_TABLES}, not {sorted(unknown)}")

        def read(table: str) -> pl.DataFrame:
            return raw.get(table, pl.DataFrame(schema=raw_schema(table)))

    staged, quarantine, counts = {}, [], []
    limits = _Limits(bounds.symbol_limits(instruments, trade_date, settings), trade_date, settings)
    # The cross-table rules look at the staged rows of the tables before them.
    rules: dict[str, Callable[[pl.DataFrame], pl.DataFrame]] = {
        "quotes": lambda kept: _quotes(kept, limits),
        "market_trades": lambda kept: limits.flag(
            kept,
            [
                *bounds.size_bounds(limits.settings, "size"),
                *bounds.price_bounds(limits.settings, "price"),
                limits.date_bound("ts"),
            ],
        ),
        "orders": lambda kept: _orders(kept, instruments, limits),
        "child_orders": lambda kept: _child_orders(kept, staged["orders"], limits),
        "executions": lambda kept: _executions(
            kept,
            staged["orders"],
            staged["child_orders"],
            staged["quotes"],
            settings,
            limits,
        ),
    }
    for table, rule in rules.items():
        landed = read(table)
        kept, collapsed = _validate_table(landed, CONTRACT[table], settings)
        flagged = rule(kept)
        del kept
        s, q, c = _split(landed, flagged, collapsed, CONTRACT[table], trade_date, landing)
        del landed, flagged
        if table == "quotes":  # the rules after it (read through `limits`) see the day's range
            limits = limits.with_quote_range(s)
        staged[table] = s
        quarantine.append(q)
        counts.append(c)
    return IngestResult(
        staged={t: staged[t] for t in PARTITION_TABLES},
        quarantine=pl.concat(quarantine, how="vertical"),
        counts=pl.concat(counts, how="vertical"),
    )
