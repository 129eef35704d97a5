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


def not_a_partition(day: date) -> str | None:
    """Why landed data of `day` has no trade-date partition to go to, or None when it has one.
    Landing folders can carry any date; a weekend, a date before TRADE_DATE_START or one after
    today cannot be materialized, and callers say so by name instead of failing on Dagster's
    unknown-partition error."""
    if trade_date_partitions.has_partition_key(day.isoformat()):
        return None
    if day.isoformat() < TRADE_DATE_START:
        return f"{day} is before {TRADE_DATE_START}, the first trade-date partition"
    if day.weekday() >= 5:
        return f"{day} is a {day:%A}: trade-date partitions are weekdays"
    return f"{day} is in the future: the last trade-date partition is today's"
