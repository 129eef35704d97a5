"""Venue performance analysis: pure Polars/numpy logic, importable without Dagster.

`frames` enriches fills and child orders with their comparison buckets, `daily` aggregates them
per venue and trade date, `stats` estimates mix-adjusted venue means with cluster-robust
intervals, `scorecard` turns those into the scored and tiered scorecard, `routing` solves the
allocation problem, `events` builds VenuePerformanceEvents and `chart` draws the all-in cost
chart. The methodology is in docs/VENUES.md.
"""
