select {columns} from {table} as c
where c.trade_date = $trade_date
    and (
        c.order_id in (
            select o.order_id from quality.order_quality as o
            where o.trade_date = $trade_date
                and (o.symbol between $first and $last or ($first_range and o.symbol is null))
        )
        or (
            $first_range
            and not exists (
                select 1 from quality.order_quality as o
                where o.trade_date = $trade_date and o.order_id = c.order_id
            )
        )
    )
