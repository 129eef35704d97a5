select trade_date, min(inputs_fingerprint) as inputs_fingerprint
from staging.ingest_log
where trade_date between $start and $end
group by trade_date
