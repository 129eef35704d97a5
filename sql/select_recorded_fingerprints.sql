select
    coalesce(strftime(trade_date, '%Y-%m-%d'), 'instruments') as staged,
    min(inputs_fingerprint) as inputs_fingerprint,
    count(distinct inputs_fingerprint) as versions
from staging.ingest_log
group by staged
