"""Every warehouse table, by name (`staging.orders`, ...), in the order docs/TABLES.md lists them.

The one place a warehouse column is declared (`eqs_pipeline.tables.spec` says how): the staging
tables in `staging`, the quality tables in `quality`, the venue tables in `venue`, the cost
model's in `model`, the algo tables in `algo`, the monitoring's in `monitor`. A new domain's
tables go in a module of their own here, added to `TABLES` below.
"""

from __future__ import annotations

from eqs_pipeline.tables import algo, model, monitor, quality, staging, venue
from eqs_pipeline.tables.spec import Column, Table

TABLES: dict[str, Table] = {
    t.name: t for module in (staging, quality, venue, algo, model, monitor) for t in module.TABLES
}


def table(name: str) -> Table:
    """The table called `name` (`schema.table`)."""
    try:
        return TABLES[name]
    except KeyError:
        raise KeyError(f"no warehouse table {name!r} in eqs_pipeline.tables.registry") from None


def column(table_name: str, name: str) -> Column:
    """The column `name` of `table_name` (or the one a setting names so)."""
    return table(table_name).column(name)
