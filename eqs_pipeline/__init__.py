"""Execution Quality Service: best-execution and transaction-cost analysis as Dagster assets.

Importing the package sets one process-wide default before anything imports Polars: how soon
Polars' allocator (jemalloc) gives freed memory back to the kernel. Polars' own setting
(`dirty_decay_ms:500,muzzy_decay_ms:1000`, in `polars/__init__.py`) hands it back within about a
second, so a partition that allocates and frees a few hundred MB per step pays again and again
for the kernel to supply fresh zeroed pages: at 10M fills that was 12-14 s of system time in a
30 s pipeline. Kept for 10 s, freed pages are reused by the next step or partition (pipeline
30 s -> 25-26 s, peak RSS 2.0 -> 2.6-3.1 GiB; docs/PERFORMANCE.md, "Allocator"). And one arena
per core instead of jemalloc's four: pages freed in one arena are reused only by the threads of
that arena, so with four per core a step held the pages the one before freed in other arenas
as well as its own (one date of 2M fills: peak RSS 3.39-3.45 -> 2.96-3.16 GiB, system time
11.9-13.3 -> 9.8-10.8 s). Polars appends
`_RJEM_MALLOC_CONF` to its own setting, so the value here (or yours) wins. Set it yourself to
choose otherwise (`muzzy_decay_ms:0` gives memory back at once); an explicit setting is never
overridden.
"""

import os

POLARS_ALLOCATOR_ENV = "_RJEM_MALLOC_CONF"
POLARS_ALLOCATOR_CONF = f"muzzy_decay_ms:10000,narenas:{os.cpu_count() or 1}"

os.environ.setdefault(POLARS_ALLOCATOR_ENV, POLARS_ALLOCATOR_CONF)
