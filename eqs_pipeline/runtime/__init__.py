"""The Dagster runtime: the project's executor, the fork server's preload, and the runner behind `eqs run`."""
