"""`make bench` (docs/PERFORMANCE.md).

Importing `eqs_pipeline` first sets its allocator default for Polars before any case imports
Polars, so every case, the bare kernels included, runs under the allocator the pipeline runs
under in production (`eqs_pipeline.POLARS_ALLOCATOR_CONF`, or the caller's `_RJEM_MALLOC_CONF`).
"""

import eqs_pipeline  # noqa: F401
