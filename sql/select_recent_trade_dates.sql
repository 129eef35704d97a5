select distinct trade_date from {table} order by trade_date desc limit $days
