select trade_date, symbol, venue, sum(size) as volume
from staging.market_trades
where trade_date between $start and $end
group by trade_date, symbol, venue
