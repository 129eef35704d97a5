"""Execution Quality Service: best-execution and transaction-cost analysis as Dagster assets.

Importing the package sets one process-wide default before anything imports Polars: how soon
Polars' allocator (jemalloc) gives freed memory back to the kernel. Polars' own setting
(`dirty_decay_ms:500,muzzy_decay_ms:1000`, in `polars/__init__.py`) hands it back within about a
second, so a partition that allocates and frees a few hundred MB per step pays again and again
for the kernel to supply fresh zeroed pages: at 10M fills that was 12-14 s of system time in a
30 s pipeline. Kept for 10 s, freed pages are reused by the next step or partition (pipeline
30 s -> 25-26 s, peak RSS 2.0 -> 2.6-3.1 GiB; docs/PERFORMANCE.md, "Allocator"). Polars appends
`_RJEM_MALLOC_CONF` to its own setting, so the value here (or yours) wins. Set it yourself to
choose otherwise (`muzzy_decay_ms:0` gives memory back at once); an explicit setting is never
overridden.
"""

import os

POLARS_ALLOCATOR_ENV = "_RJEM_MALLOC_CONF"
POLARS_ALLOCATOR_CONF = "muzzy_decay_ms:10000"

os.environ.setdefault(POLARS_ALLOCATOR_ENV, POLARS_ALLOCATOR_CONF)
