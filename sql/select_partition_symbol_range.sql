select {columns} from {table}
where trade_date = $trade_date
    and (symbol between $first and $last or ($first_range and symbol is null))
