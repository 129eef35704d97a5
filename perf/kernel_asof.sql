with nbbo as (
    select symbol, ts, (bid_px + ask_px) / 2 as mid from quotes
),
fills as (
    select e.*, case when o.side = 'BUY' then 1.0 else -1.0 end as d
    from executions e
    left join orders o using (order_id)
),
prevailing as (
    select f.*, q.mid
    from fills f
    asof left join nbbo q on f.symbol = q.symbol and q.ts < f.exec_ts
),
later as (
    select p.*, q.mid as mid_h
    from prevailing p
    asof left join nbbo q
        on p.symbol = q.symbol and q.ts <= p.exec_ts + to_seconds($horizon_s)
)
select
    symbol,
    count(*) as fills,
    sum(2 * d * (price - mid) / mid * 1e4 * qty) / sum(qty) filter (where mid is not null)
        as effective_spread_bps,
    sum(2 * d * (price - mid_h) / mid * 1e4 * qty) / sum(qty) filter (where mid is not null)
        as realized_spread_60s_bps
from later
group by symbol
order by symbol
