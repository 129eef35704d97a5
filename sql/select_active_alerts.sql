-- The monitoring's active alerts (open or acknowledged), most severe first, then the oldest:
-- what `eqs run` / `eqs demo` name at the end of their summary.
select
    alert_id,
    status,
    severity,
    dimension,
    subject,
    metric,
    trade_date,
    last_alarm_date,
    detector
from monitor.alerts
where status in ('open', 'acknowledged')
order by
    case severity when 'critical' then 0 when 'warning' then 1 else 2 end,
    trade_date,
    alert_id
