-- Reproduces the scorecard's unadjusted figures (`<m>_unadjusted`, fills, shares, notional)
-- from quality.fill_quality and staging.child_orders over the scorecard's window, with the
-- default all-in horizon of 60 s (docs/VENUES.md).
create or replace view venue.scorecard_from_fills as
with scorecard_window as (
    select distinct window_start, window_end from venue.venue_scorecard
),

window_fills as (
    select
        f.venue,
        f.qty,
        f.notional,
        f.effective_spread_bps,
        f.price_improvement_bps,
        f.markout_5s_bps,
        f.markout_60s_bps,
        f.markout_300s_bps,
        f.fee_bps,
        coalesce(f.fee_bps, 0) - f.markout_60s_bps as all_in_cost_bps
    from quality.fill_quality as f
    inner join scorecard_window as w on f.trade_date between w.window_start and w.window_end
),

fill_figures as (
    select
        venue,
        count(*) as fills,
        sum(qty) as shares,
        sum(notional) as notional,
        sum(all_in_cost_bps * qty) / sum(qty) filter (where all_in_cost_bps is not null)
            as all_in_cost_bps_unadjusted,
        sum(effective_spread_bps * qty) / sum(qty) filter (where effective_spread_bps is not null)
            as effective_spread_bps_unadjusted,
        sum(price_improvement_bps * qty) / sum(qty) filter (where price_improvement_bps is not null)
            as price_improvement_bps_unadjusted,
        sum(markout_5s_bps * qty) / sum(qty) filter (where markout_5s_bps is not null)
            as markout_5s_bps_unadjusted,
        sum(markout_60s_bps * qty) / sum(qty) filter (where markout_60s_bps is not null)
            as markout_60s_bps_unadjusted,
        sum(markout_300s_bps * qty) / sum(qty) filter (where markout_300s_bps is not null)
            as markout_300s_bps_unadjusted,
        sum(fee_bps * qty) / sum(qty) filter (where fee_bps is not null) as fee_bps_unadjusted
    from window_fills
    group by venue
),

-- A child order is (trade_date, child_id): ids are unique per trade date only
-- (docs/INGESTION.md), so its fills are those of the same child_id on the same date.
child_executed as (
    select c.venue, c.qty, least(coalesce(sum(f.qty), 0), c.qty) as executed_qty
    from staging.child_orders as c
    inner join scorecard_window as w on c.trade_date between w.window_start and w.window_end
    left join quality.fill_quality as f
        on f.trade_date = c.trade_date and f.child_id = c.child_id
    group by c.trade_date, c.child_id, c.venue, c.qty
),

child_figures as (
    select venue, sum(executed_qty) / sum(qty) as fill_rate_unadjusted
    from child_executed
    group by venue
)

select
    coalesce(f.venue, c.venue) as venue,
    coalesce(f.fills, 0) as fills,
    coalesce(f.shares, 0) as shares,
    coalesce(f.notional, 0) as notional,
    f.all_in_cost_bps_unadjusted,
    f.effective_spread_bps_unadjusted,
    f.price_improvement_bps_unadjusted,
    f.markout_5s_bps_unadjusted,
    f.markout_60s_bps_unadjusted,
    f.markout_300s_bps_unadjusted,
    f.fee_bps_unadjusted,
    c.fill_rate_unadjusted
from fill_figures as f
full outer join child_figures as c on f.venue = c.venue
