"""The registry's vocabulary: a warehouse column, a row check and a table, as plain data.

A `Column` is declared once, in its table's module (`staging`, `quality`, `venue`), with
everything the project says about it: its Polars type, whether it may be null, its unit, the
values it may take and its description. Everything else is generated from these declarations
(`eqs_pipeline.tables.registry` lists them): the pandera schemas (`schemas`), the DuckDB tables
(`ddl`), the Dagster column schemas (`eqs_pipeline.defs.metadata`) and docs/TABLES.md
(`catalog`).

Plain data on purpose: Polars types and expressions, no pandera (about 1.3 s to import) and no
DuckDB, so the Dagster definitions load the registry at no cost.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import polars as pl

Unit = Literal[
    "bps",  # basis points of a price or notional (1 bps = 0.01%)
    "bps/s",
    "shares",
    "price",  # currency per share
    "currency",  # an amount in the instrument's currency
    "currency/day",
    "currency/month",
    "ratio",  # a fraction: 0.02 = 2%
    "s",
    "ms",
    "count",
    "days",
    "points",  # the 0-100 quality score
]

_NAME = re.compile(r"[a-z][a-z0-9_]*")


def _number(value: float) -> str:
    return f"{value:.10g}"


@dataclass(frozen=True)
class Column:
    """One warehouse column and its rules; a null value always passes the value rules (whether
    a column may be null is `nullable`'s business)."""

    name: str
    dtype: pl.DataType
    description: str
    unit: Unit | None = None
    nullable: bool = True
    # Value rules: allowed values, bounds (gt: >, ge: >=, le: <=), a regex the text matches
    # from its start, no NaN or infinity, a list holding at least one item, unique values.
    allowed: tuple[str | int, ...] | None = None
    gt: float | None = None
    ge: float | None = None
    le: float | None = None
    pattern: str | None = None
    finite: bool = False
    non_empty: bool = False
    unique: bool = False
    # The names a setting gives the column (a regex, matched whole); `name` is the default's.
    name_pattern: str | None = None

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise ValueError(f"column name {self.name!r} is not snake_case")
        if self.name_pattern and not re.fullmatch(self.name_pattern, self.name):
            raise ValueError(f"{self.name}: its name_pattern does not match its name")

    def rules(self, code: Callable[[str], str] = str) -> list[str]:
        """The column's rules in words (docs/TABLES.md, the Dagster column schema); `code`
        formats a literal value or pattern."""
        out = [] if self.nullable else ["not null"]
        if self.unique:
            out.append("unique")
        if self.finite:
            out.append("finite")
        if self.gt is not None:
            out.append(f"> {_number(self.gt)}")
        if self.ge is not None and self.le is not None:
            out.append(f"in [{_number(self.ge)}, {_number(self.le)}]")
        elif self.ge is not None:
            out.append(f">= {_number(self.ge)}")
        elif self.le is not None:
            out.append(f"<= {_number(self.le)}")
        if self.allowed:
            out.append("one of " + ", ".join(code(str(v)) for v in self.allowed))
        if self.pattern:
            out.append(f"matches {code(self.pattern)}")
        if self.non_empty:
            out.append("not empty")
        return out

    def names(self, name: str) -> bool:
        """Whether `name` is this column's: its name, or one its settings give it."""
        return name == self.name or bool(
            self.name_pattern and re.fullmatch(self.name_pattern, name)
        )


@dataclass(frozen=True, eq=False)
class RowCheck:
    """A rule every row satisfies, across columns: `ok` is true for a valid row (null counts as
    valid: missing values are the nullable columns' business). Named after its reason code."""

    name: str
    description: str
    ok: pl.Expr


@dataclass(frozen=True, eq=False)
class Table:
    """A warehouse table (`schema.name`): its columns in their order, the columns that identify
    a row (`unique`, together) and its row checks. A `view` is created by its statement in
    `sql/`: documented here, not created nor validated from the registry.

    A `lake` table is large and rarely queried (staged quotes, tape, fills, child orders; the
    scored fills): its rows are stored once, in its daily Parquet lake partitions, and the
    warehouse holds a view over them (`ddl.lake_view_statement`) with the registry's columns,
    which analysts query like a table. It is validated like a table. Where the lake is on
    object storage, which DuckDB cannot read without an extension it would have to download,
    the warehouse holds a table of it instead (docs/ARCHITECTURE.md, "Where each table lives")."""

    name: str
    description: str
    columns: tuple[Column, ...]
    unique: tuple[str, ...] = ()
    row_checks: tuple[RowCheck, ...] = ()
    view: bool = False
    lake: bool = False

    def __post_init__(self) -> None:
        names = self.names
        if len(set(names)) != len(names):
            raise ValueError(f"{self.name}: a column is declared twice")
        unknown = [c for c in self.unique if c not in names]
        for check in self.row_checks:
            unknown += [c for c in check.ok.meta.root_names() if c not in names]
        if unknown:
            raise ValueError(f"{self.name}: the key or a row check names {unknown}, not columns")
        if self.lake and (self.view or "trade_date" not in names):
            raise ValueError(f"{self.name}: a lake table is a dated table, not a view")

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def polars_schema(self) -> dict[str, pl.DataType]:
        """Column name -> Polars type, in the table's order (default settings)."""
        return {c.name: c.dtype for c in self.columns}

    def column(self, name: str) -> Column:
        """The column called `name`, or the one a setting names so."""
        for c in self.columns:
            if c.name == name:
                return c
        for c in self.columns:
            if c.names(name):
                return c
        raise KeyError(f"{self.name} has no column {name!r}")


# The bounds of a window table (scorecards, curves, recommendations): declared once here.
WINDOW_START = Column("window_start", pl.Date, "First trade date of the window.", nullable=False)
WINDOW_END = Column("window_end", pl.Date, "Last trade date of the window.", nullable=False)
TRADE_DAYS = Column(
    "trade_days", pl.Int32, "Trade dates in the window.", "days", nullable=False, ge=1
)
