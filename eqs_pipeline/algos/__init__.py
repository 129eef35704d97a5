"""Algorithm and broker performance (docs/ALGOS.md): per-date figures, the difficulty-adjusted
algo and broker x algo scorecards, the algo wheel's unbiased comparison, parameter curves,
per-order algo selection through the cost model and the recommended mix. Pure: no Dagster, no
DuckDB."""
