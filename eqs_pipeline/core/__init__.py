"""Data specification shared by every layer: the landing contract (`contract`), the documented
settings of every computation (`settings`) and a trade date split into symbol ranges
(`ranges`). Imports nothing of the project."""
