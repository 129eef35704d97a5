select * from {table} where trade_date between $start and $end
