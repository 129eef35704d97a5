"""What the executor's fork server runs before it forks step processes
(`eqs_pipeline.runtime.executor.PRELOAD_MODULES`): build the definitions, which imports every module
they load. `defs()` is cached, so a forked step finds them built instead of spending 0.1-0.2 s
rebuilding them. Building definitions imports and decorates; it runs no query and starts no
thread, so the fork is safe."""

from eqs_pipeline.definitions import defs

defs()
