"""The warehouse tables: their columns (`catalog`: descriptions, the source of docs/TABLES.md) and
the pandera schemas every produced frame is validated against (`schemas`). Above the domain
packages, whose constants they use, and below `defs`."""
