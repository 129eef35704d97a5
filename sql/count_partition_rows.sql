select count(*) from {table} where trade_date = $trade_date
