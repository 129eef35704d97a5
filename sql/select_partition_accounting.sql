-- Per source table of one trade date (null: the undated instruments): rows quarantined and
-- identical duplicates collapsed.
with quarantined as (
    select source_table, count(*) as quarantined_rows
    from staging.quarantine
    where trade_date is not distinct from $trade_date
    group by source_table
),

collapsed as (
    select source_table, sum(collapsed_duplicates) as collapsed_duplicates
    from staging.ingest_log
    where trade_date is not distinct from $trade_date
    group by source_table
)

select
    coalesce(q.source_table, c.source_table) as source_table,
    coalesce(q.quarantined_rows, 0) as quarantined_rows,
    coalesce(c.collapsed_duplicates, 0) as collapsed_duplicates
from quarantined as q
full outer join collapsed as c on q.source_table = c.source_table
