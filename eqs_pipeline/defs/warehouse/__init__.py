"""The load step: a trade date's lake partitions into the DuckDB warehouse, under the pool."""

import dagster as dg

WAREHOUSE_DAY_KEY = dg.AssetKey(["warehouse", "day"])
