delete from {table} where trade_date in (select unnest($trade_dates::date[]))
