"""What validation returns: staged rows, quarantined rows, per-file counts, and the conservation check.

Conservation ("nothing is lost"): for every table and trade date,
landed rows = staged rows + quarantined rows + collapsed identical duplicates.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

import polars as pl

from eqs_pipeline.core.contract import CONTRACT

QUARANTINE_SCHEMA: dict[str, pl.DataType] = {
    "source_table": pl.String(),
    "trade_date": pl.Date(),
    "source_file": pl.String(),
    "source_row": pl.Int64(),
    "row_json": pl.String(),
    "reasons": pl.List(pl.String()),
}

COUNTS_SCHEMA: dict[str, pl.DataType] = {
    "source_table": pl.String(),
    "trade_date": pl.Date(),
    "source_file": pl.String(),
    "landed_rows": pl.Int64(),
    "staged_rows": pl.Int64(),
    "quarantined_rows": pl.Int64(),
    "collapsed_duplicates": pl.Int64(),
}

CONSERVATION_SCHEMA: dict[str, pl.DataType] = {
    "source_table": pl.String(),
    "trade_date": pl.Date(),
    "landed_rows": pl.Int64(),
    "staged_rows": pl.Int64(),
    "quarantined_rows": pl.Int64(),
    "collapsed_duplicates": pl.Int64(),
    "holds": pl.Boolean(),
}


def staged_schema(table: str) -> dict[str, pl.DataType]:
    """Columns of a staged table: the contract columns, `trade_date` when dated, `source_file`."""
    contract = CONTRACT[table]
    dated = {"trade_date": pl.Date()} if contract.dated else {}
    return {**contract.polars_schema, **dated, "source_file": pl.String()}


@dataclass(frozen=True)
class IngestResult:
    """Validated rows of one partition (or of the instruments).

    staged: table name -> contract rows that passed every rule (`staged_schema(table)`).
    quarantine: rows that broke at least one rule, with every reason (`QUARANTINE_SCHEMA`).
    counts: per table and source file, landed / staged / quarantined rows and collapsed
        identical duplicates (`COUNTS_SCHEMA`).
    """

    staged: dict[str, pl.DataFrame]
    quarantine: pl.DataFrame
    counts: pl.DataFrame


def conservation_report(
    result: IngestResult, landed_counts: Mapping[str, int], trade_date: date | None = None
) -> pl.DataFrame:
    """Per table: rows counted in the landing files vs staged + quarantined + collapsed.

    `landed_counts` maps table name -> an independent count (`count_landed_rows`). Staged and
    quarantined rows are counted from the frames themselves, not from `result.counts`, so the
    check also catches bookkeeping errors. `trade_date` only labels the rows (None for the
    instruments). `holds` is False for every table that does not add up.
    """
    rows = []
    tables = sorted(set(landed_counts) | set(result.staged))
    collapsed = result.counts.group_by("source_table").agg(pl.col("collapsed_duplicates").sum())
    collapsed_by_table = dict(collapsed.iter_rows())
    for table in tables:
        quarantined = result.quarantine.filter(pl.col("source_table") == table)
        staged = result.staged.get(table)
        n_staged = 0 if staged is None else staged.height
        n_quarantined = quarantined.height
        n_collapsed = int(collapsed_by_table.get(table) or 0)
        landed = int(landed_counts.get(table, 0))
        rows.append(
            {
                "source_table": table,
                "trade_date": trade_date,
                "landed_rows": landed,
                "staged_rows": n_staged,
                "quarantined_rows": n_quarantined,
                "collapsed_duplicates": n_collapsed,
                "holds": landed == n_staged + n_quarantined + n_collapsed,
            }
        )
    return pl.DataFrame(rows, schema=CONSERVATION_SCHEMA)
