"""The injected degradation (`simulate.Degradation`): the venue fills worse and turns toxic
from its onset, and nothing before the onset changes."""

from datetime import date

import polars as pl
import pytest

from eqs_pipeline.simulate import Degradation, SimulationConfig, iter_days

ONSET = date(2026, 11, 3)


def _fills(cfg: SimulationConfig) -> pl.DataFrame:
    """Every fill with its side and the mid of the quote prevailing before it."""
    _, days = iter_days(cfg)
    days = list(days)
    table = lambda name: pl.concat(d.tables[name] for d in days)  # noqa: E731
    quotes = table("quotes").select(
        "symbol", pl.col("ts").alias("exec_ts"), mid=(pl.col("bid_px") + pl.col("ask_px")) / 2
    )
    return (
        table("executions")
        .join(table("orders").select("order_id", "side"), on="order_id")
        .sort("exec_ts")
        .join_asof(quotes.sort("exec_ts"), on="exec_ts", by="symbol", strategy="backward")
        .with_columns(
            paid=pl.when(pl.col("side") == "BUY").then(1.0).otherwise(-1.0)
            * (pl.col("price") - pl.col("mid"))
        )
    )


def _config(**kw) -> SimulationConfig:
    return SimulationConfig(days=2, symbols=6, orders_per_day=60, seed=3, routing="dark-lit", **kw)


def test_degradation_prices_the_venue_worse_from_its_onset_only() -> None:
    onset_s = 3 * 3600.0
    base = _fills(_config())
    worse = _fills(_config(degradation=Degradation("LTB", ONSET, onset_s, ticks=1.0)))
    first = pl.col("exec_ts").dt.date() < ONSET
    # The first date is the same run, draw for draw.
    assert base.filter(first).equals(worse.filter(first))
    onset = pl.lit(ONSET).cast(pl.Datetime("us", "UTC")) + pl.duration(hours=14, minutes=30)
    after = (pl.col("venue") == "LTB") & (pl.col("exec_ts") >= onset + pl.duration(seconds=onset_s))
    paid = {name: f.filter(after)["paid"] for name, f in (("base", base), ("worse", worse))}
    assert paid["worse"].len() > 100
    # Every fill pays one tick (0.01) more against the prevailing mid, give or take the mid's
    # own path (the toxic moves change it).
    assert paid["worse"].mean() - paid["base"].mean() > 0.007


def test_degradation_names_a_routed_venue() -> None:
    with pytest.raises(ValueError, match="no venue 'XNAS'"):
        _config(degradation=Degradation("XNAS", ONSET))
