-- Headline figures of the whole warehouse, for the run summary.
-- Trade dates are those ingested (a date of market data without orders counts too).
with dates as (
    select
        count(distinct trade_date) as trade_dates,
        min(trade_date) as first_date,
        max(trade_date) as last_date
    from staging.ingest_log
    where trade_date is not null
),

orders as (
    select
        count(*) as orders,
        sum(notional) as filled_notional,
        sum(implementation_shortfall_bps * order_qty * arrival_mid)
        / sum(case when implementation_shortfall_bps is not null then order_qty * arrival_mid end)
            as implementation_shortfall_bps,
        sum(filled_qty) / sum(order_qty) as fill_rate,
        -- Orders that are not graded have a null score: avg skips them, and they are counted.
        avg(quality_score) as mean_quality_score,
        count(*) filter (where quality_grade is null) as ungraded_orders,
        count(*) filter (where expected_cost_source like 'cm-%') as model_priced_orders
    from quality.order_quality
),

fills as (
    select
        count(*) as fills,
        sum(effective_spread_bps * qty)
        / sum(case when effective_spread_bps is not null then qty end) as effective_spread_bps,
        sum(price_improvement_bps * qty)
        / sum(case when price_improvement_bps is not null then qty end) as price_improvement_bps,
        sum(markout_60s_bps * qty)
        / sum(case when markout_60s_bps is not null then qty end) as markout_60s_bps,
        count(*) filter (where null_reason = 'no_prior_quote') as fills_without_quote
    from quality.fill_quality
),

quarantine as (
    select count(*) as quarantined_rows from staging.quarantine
)

select * from dates, orders, fills, quarantine
