"""The `eqs` command line: `main` (the commands), `summary` and `venues` (what they print)."""
