"""The `CostModel` protocol."""

from __future__ import annotations

from typing import Protocol

import polars as pl

# The order columns a cost model may read (`quality.order_quality` computes them first): the
# arrival quoted spread, the daily volatility (the instrument's, or the default), the order's
# size over the ADV, its realized participation of the interval's volume (null without tape)
# and its duration in seconds.
FEATURES = (
    "arrival_spread_bps",
    "daily_volatility",
    "size_pct_adv",
    "participation_rate",
    "duration_s",
)


class CostModel(Protocol):
    """Expected cost of an order, in bps of its arrival mid, from its `FEATURES`."""

    name: str

    def with_expected_cost(self, orders: pl.LazyFrame) -> pl.LazyFrame:
        """`orders` with a Float64 column `expected_cost_bps`, null where the model cannot
        price the order (the order is then not graded). Rows keep their order."""
        ...
