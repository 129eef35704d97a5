"""Bare kernels: the yardstick the pipeline is measured against.

One as-of pass over the whole data set, with no chunking and nothing but what the figure needs:
each fill's side (from its order), its prevailing quote (last NBBO strictly before the fill) and
the mid 60 s later (last NBBO at or before), then the share-weighted effective and 60 s realized
spread per symbol. The same kernel in Polars (`join_asof`), pandas (`merge_asof`) and DuckDB
(`ASOF JOIN`); all three read the same Parquet files and return the same numbers.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from perf.datasets import staged, trade_dates

HORIZON_S = 60


def _files(folder: Path, table: str) -> list[str]:
    return [str(p) for d in trade_dates(folder) for p in (folder / table / f"date={d}").glob("*")]


def polars_kernel(folder: Path) -> pl.DataFrame:
    """Per symbol: fills, share-weighted effective and realized (60 s) spread in bps.

    Sorted by time alone and joined by symbol (trade dates never overlap in time, so the symbol
    keeps each fill in its own day): the fastest of the idiomatic forms measured, 1.3-2x as
    fast as sorting and joining by (trade_date, symbol) (docs/PERFORMANCE.md, "The kernels").
    """
    quotes = (
        staged(folder, "quotes", columns=["symbol", "ts", "bid_px", "ask_px"])
        .select("symbol", "ts", mid=(pl.col("bid_px") + pl.col("ask_px")) / 2)
        .sort("ts")
    )
    orders = staged(folder, "orders", columns=["order_id", "side"])
    fills = (
        staged(folder, "executions", columns=["order_id", "symbol", "exec_ts", "qty", "price"])
        .join(orders, on="order_id", how="left")
        .with_columns(
            d=pl.when(pl.col("side") == "BUY").then(1.0).otherwise(-1.0),
            t_h=pl.col("exec_ts") + pl.duration(seconds=HORIZON_S),
        )
        .sort("exec_ts")
    )
    # Sorted by time, hence within every symbol: Polars cannot check that with `by`, and says so.
    asof = {"by": "symbol", "check_sortedness": False}
    fills = fills.join_asof(
        quotes, left_on="exec_ts", right_on="ts", allow_exact_matches=False, **asof
    ).sort("t_h")
    fills = fills.join_asof(quotes.rename({"mid": "mid_h"}), left_on="t_h", right_on="ts", **asof)
    d, p, m, m_h, q = (pl.col(c) for c in ("d", "price", "mid", "mid_h", "qty"))
    eff = 2 * d * (p - m) / m * 1e4
    real = 2 * d * (p - m_h) / m * 1e4
    known = q.filter(m.is_not_null()).sum()
    return (
        fills.group_by("symbol")
        .agg(
            fills=pl.len(),
            effective_spread_bps=(eff * q).sum() / known,
            realized_spread_60s_bps=(real * q).sum() / known,
        )
        .sort("symbol")
        .collect()
    )


def pandas_kernel(folder: Path) -> pl.DataFrame:
    """The same kernel with pandas `merge_asof` (pyarrow-backed reads)."""
    import pandas as pd

    quotes = pd.read_parquet(_files(folder, "quotes"), columns=["symbol", "ts", "bid_px", "ask_px"])
    quotes["mid"] = (quotes["bid_px"] + quotes["ask_px"]) / 2
    quotes = quotes[["symbol", "ts", "mid"]].sort_values("ts", kind="stable")
    orders = pd.read_parquet(_files(folder, "orders"), columns=["order_id", "side"])
    fills = pd.read_parquet(
        _files(folder, "executions"), columns=["order_id", "symbol", "exec_ts", "qty", "price"]
    ).merge(orders, on="order_id", how="left")
    fills["d"] = (fills["side"] == "BUY").map({True: 1.0, False: -1.0})
    fills = fills.sort_values("exec_ts", kind="stable")
    # Days never overlap in time, so grouping by symbol alone keeps each fill in its own day.
    fills = pd.merge_asof(
        fills, quotes, left_on="exec_ts", right_on="ts", by="symbol", allow_exact_matches=False
    ).drop(columns="ts")
    fills["t_h"] = (fills["exec_ts"] + pd.Timedelta(seconds=HORIZON_S)).astype(
        fills["exec_ts"].dtype
    )
    fills = fills.sort_values("t_h", kind="stable")
    fills = pd.merge_asof(
        fills,
        quotes.rename(columns={"mid": "mid_h"}),
        left_on="t_h",
        right_on="ts",
        by="symbol",
    )
    m = fills["mid"]
    fills["eff_q"] = 2 * fills["d"] * (fills["price"] - m) / m * 1e4 * fills["qty"]
    fills["real_q"] = 2 * fills["d"] * (fills["price"] - fills["mid_h"]) / m * 1e4 * fills["qty"]
    fills["known_q"] = fills["qty"].where(m.notna(), 0.0)
    fills["one"] = 1
    g = fills.groupby("symbol", sort=True)[["one", "eff_q", "real_q", "known_q"]].sum()
    return pl.DataFrame(
        {
            "symbol": g.index.to_list(),
            "fills": g["one"].to_numpy(),
            "effective_spread_bps": (g["eff_q"] / g["known_q"]).to_numpy(),
            "realized_spread_60s_bps": (g["real_q"] / g["known_q"]).to_numpy(),
        }
    )


def duckdb_kernel(folder: Path) -> pl.DataFrame:
    """The same kernel as one DuckDB statement with two ASOF joins."""
    import duckdb

    con = duckdb.connect()
    con.execute("set TimeZone = 'UTC'")
    query = (Path(__file__).parent / "kernel_asof.sql").read_text()
    for table in ("quotes", "orders", "executions"):
        con.read_parquet(_files(folder, table)).create_view(table)
    return con.execute(query, {"horizon_s": HORIZON_S}).pl()


KERNELS = {"polars": polars_kernel, "pandas": pandas_kernel, "duckdb": duckdb_kernel}
