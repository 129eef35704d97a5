"""Pure ingestion: read the landing directory of DESIGN.md and validate it, losing nothing."""

from eqs_pipeline.ingest.layout import LandingError, count_landed_rows, discover_trade_dates
from eqs_pipeline.ingest.read import read_table

__all__ = ["LandingError", "count_landed_rows", "discover_trade_dates", "read_table"]
