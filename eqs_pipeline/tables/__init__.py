"""The warehouse tables, each column declared once (`registry`: the `staging`, `quality` and
`venue` modules, in the vocabulary of `spec`), and what is generated from them: the pandera
schemas every produced frame is validated against (`schemas`), the DuckDB tables (`ddl`) and
docs/TABLES.md (`catalog`). Above the domain packages, whose constants they use, and below `defs`.

Importing the package declares the registry's tables to the warehouse (`ddl.declare`), which
then creates them with the registry's columns and types.
"""

from eqs_pipeline.tables import ddl as _ddl

_ddl.declare()
