select trade_date, count(*)::bigint as warehouse_rows
from {table}
where trade_date in (select unnest($trade_dates::date[]))
group by trade_date
