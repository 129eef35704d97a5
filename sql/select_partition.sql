select {columns} from {table} where trade_date = $trade_date
