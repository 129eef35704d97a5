"""Pure ingestion: read the landing directory (docs/INGESTION.md) and validate it, losing nothing.

`discover_trade_dates` and `read_table` read the landing directory, a folder or an object-store
URL (`store`; file-level problems raise `LandingError`); `validate_instruments` and
`validate_partition` apply the row rules and split the rows into staged and quarantined ones;
`count_landed_rows` and `conservation_report` prove that landed = staged + quarantined +
collapsed duplicates. docs/INGESTION.md lists the rules.
"""

from eqs_pipeline.ingest.layout import LandingError, count_landed_rows, discover_trade_dates
from eqs_pipeline.ingest.read import raw_schema, read_table
from eqs_pipeline.ingest.result import (
    COUNTS_SCHEMA,
    QUARANTINE_SCHEMA,
    IngestResult,
    conservation_report,
    staged_schema,
)
from eqs_pipeline.ingest.rules import validate_instruments, validate_partition

__all__ = [
    "COUNTS_SCHEMA",
    "QUARANTINE_SCHEMA",
    "IngestResult",
    "LandingError",
    "conservation_report",
    "count_landed_rows",
    "discover_trade_dates",
    "raw_schema",
    "read_table",
    "staged_schema",
    "validate_instruments",
    "validate_partition",
]
