"""Trade-date partitions shared by every daily asset.

One partition per weekday (exchange holidays simply have no landed data). Partition keys are
`YYYY-MM-DD`, the same as the landing folders' `date=` part. History starts in 2010, early
enough for the LOBSTER 2012 sample and any desk's backfill.
"""

from datetime import date

import dagster as dg

TRADE_DATE_START = "2010-01-04"

trade_date_partitions = dg.TimeWindowPartitionsDefinition(
    cron_schedule="0 0 * * 1-5",
    start=TRADE_DATE_START,
    fmt="%Y-%m-%d",
    timezone="UTC",
    # Today's partition exists from midnight, so the evening schedule can materialize it.
    end_offset=1,
)


def partition_date(context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext) -> date:
    """The trade date of the partition being materialized."""
    return date.fromisoformat(context.partition_key)
