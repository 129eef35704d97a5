"""Quality monitoring: alert detection and delivery, pure logic importable without Dagster.

`detectors` turns the daily metric series into alerts (static thresholds, EWMA and CUSUM
control charts, configured in `settings`), and `delivery` sends those alerts to webhooks, Slack
and e-mail with retries, keeping a per-(alert, channel) delivery record that the caller
persists, so that nothing is lost and nothing is sent twice. Neither opens DuckDB or knows
Dagster: they take and return plain values and Polars frames. The methodology is in
docs/MONITORING.md.
"""
