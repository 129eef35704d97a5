"""Dagster wiring, one folder per domain; the logic lives outside `defs/`."""
