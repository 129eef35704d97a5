"""Storage: the Parquet lake, the DuckDB warehouse, the event exports and object-store access. Imports only core."""
