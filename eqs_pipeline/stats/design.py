"""The units and the designs of both models: the scorecard model (cells, venues, the controls'
additive effects) and the working model of the conditional intervals (working cells, venue x
flag effects and slopes on the spread).

A unit is the set of rows sharing every key either model needs (cluster, venue, cell columns,
controls, flag): its rows share their regressors but for the spread, so one group-by reduces
the rows to per-unit sums and no rows x regressors matrix is formed. Both designs are indicator
designs given by each unit type's regressors (`columns`: the positions of its ones). The
derivation: docs/VENUES.md, "Mix adjustment (scorecard): the statistics" and "Computation at
scale".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

# The sums of a unit (`unit_sums`): its rows, sum w, and with a spread s sum w s and sum w s^2;
# per value j sum w y_j and with a spread sum w s y_j.
ROWS = "rows"
WEIGHT = "weight"
WEIGHT_X_SPREAD = "weight_x_spread"
WEIGHT_X_SPREAD_SQ = "weight_x_spread_sq"


def weight_x_value(j: int) -> str:
    """The unit's sum of w y over its rows, of value j."""
    return f"weight_x_value_{j}"


def weight_x_spread_x_value(j: int) -> str:
    """The unit's sum of w s y over its rows, of value j."""
    return f"weight_x_spread_x_value_{j}"


def categorical(expr: pl.Expr) -> pl.Expr:
    """`expr` as strings in a private dictionary (random categories, discarded with the data):
    a group-by on it hashes 4-byte codes, not strings."""
    return expr.cast(pl.String).cast(pl.Categorical(pl.Categories.random()))


def as_expr(column: str | pl.Expr) -> pl.Expr:
    """A column given by name, or an expression of the frame's columns (the scorecard's cell:
    evaluated batch by batch where the units are summed, never held as a column of its own)."""
    return pl.col(column) if isinstance(column, str) else column


# Below this many values (and without nulls), `codes` sorts them with NumPy: Polars'
# categorical route costs about 1 ms a call whatever the size, and a scorecard calls it dozens
# of times; above it, Polars is the faster.
_SMALL_CODES = 10_000


def codes(series: pl.Series) -> tuple[np.ndarray, list[str]]:
    """Dense codes of a string or categorical series in the sorted order of its values (as
    strings), and the values."""
    if series.len() <= _SMALL_CODES and not series.null_count():
        levels, inverse = np.unique(series.cast(pl.String).to_numpy(), return_inverse=True)
        return inverse.astype(np.int64, copy=False), levels.tolist()
    if not isinstance(series.dtype, pl.Categorical | pl.Enum):
        series = series.cast(pl.Categorical(pl.Categories.random()))
    physical = series.to_physical().to_numpy()
    present = series.unique()
    levels = present.cast(pl.String)
    order = levels.arg_sort().to_numpy()
    rank = np.zeros(int(physical.max()) + 1, dtype=np.int64)
    rank[present.to_physical().to_numpy()[order]] = np.arange(order.size)
    return rank[physical], levels.gather(order).to_list()


def known(value: str | pl.Expr, weight: str) -> pl.Expr:
    """The rows that enter the estimate of `value`: known value, positive weight."""
    value = as_expr(value)
    return value.is_not_null() & value.is_not_nan() & (pl.col(weight) > 0)


def unit_sums(
    frame: pl.DataFrame,
    values: list[str | pl.Expr],
    weight: str,
    keys: dict[str, pl.Expr],
    spread: pl.Expr | None,
) -> pl.DataFrame:
    """One row per unit (the rows sharing every key) over the rows where the values are known
    and the weight positive (the values must share that mask; the first one's is used): its
    `ROWS`, `WEIGHT` and with a spread `WEIGHT_X_SPREAD`, `WEIGHT_X_SPREAD_SQ`; per value j
    `weight_x_value(j)` and with a spread `weight_x_spread_x_value(j)`.

    The streaming engine aggregates the fills in batches, never holding a filtered copy of
    them: at 10M fills about half the time and memory of the in-memory engine. Like every
    parallel float aggregate (the in-memory engine's included), its sums are reproducible to
    rounding, not bitwise: partial sums merge in scheduling order.
    """
    columns = {**keys, "row_weight": pl.col(weight).cast(pl.Float64)}
    columns |= {f"value_{j}": as_expr(v).cast(pl.Float64) for j, v in enumerate(values)}
    w = pl.col("row_weight")
    sums = {ROWS: pl.len(), WEIGHT: w.sum()}
    sums |= {weight_x_value(j): (w * pl.col(f"value_{j}")).sum() for j in range(len(values))}
    if spread is not None:
        s = pl.col("row_spread")
        columns["row_spread"] = spread
        sums |= {WEIGHT_X_SPREAD: (w * s).sum(), WEIGHT_X_SPREAD_SQ: (w * s * s).sum()}
        sums |= {
            weight_x_spread_x_value(j): (w * s * pl.col(f"value_{j}")).sum()
            for j in range(len(values))
        }
    entering = known(values[0], weight)
    units = frame.lazy().filter(entering).select(**columns).group_by(*keys).agg(**sums)
    return units.collect(engine="streaming")


def kinds(key_columns: np.ndarray, sizes: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """The distinct rows of `key_columns` (units x k, column j in 0 .. sizes[j] - 1): each
    unit's kind and one unit of each kind."""
    key = np.zeros(key_columns.shape[0], dtype=np.int64)
    for j, size in enumerate(sizes):
        key = key * size + key_columns[:, j]
    space = int(np.prod(np.array(sizes, dtype=np.float64)))
    if space <= 1 << 24:  # a table of the key space: no sort
        present = np.flatnonzero(np.bincount(key, minlength=space))
        lookup = np.zeros(space, dtype=np.int64)
        lookup[present] = np.arange(present.size)
        kind = lookup[key]
    else:
        _, kind = np.unique(key, return_inverse=True)
    first = np.zeros(int(kind.max(initial=-1)) + 1, dtype=np.int64)
    first[kind[::-1]] = np.arange(kind.size)[::-1]
    return kind, first


def cell_codes(units: pl.DataFrame, keys: tuple[str, ...]) -> tuple[np.ndarray, int]:
    """Each unit's cell (the combination of its `keys` columns) and the number of cells."""
    if not keys:
        return np.zeros(units.height, dtype=np.int64), 1
    parts = [codes(units[k]) for k in keys]
    if len(parts) == 1:
        return parts[0][0], len(parts[0][1])
    kind, first = kinds(np.stack([c for c, _ in parts], axis=1), [len(v) for _, v in parts])
    return kind, first.size


def control_codes(values: pl.Series) -> tuple[list[np.ndarray], list[int]]:
    """Per control, each unit's level code and the number of levels, from a column whose values
    join the controls' levels with "|" (`controls` of `adjusted_means_many`). Only the distinct
    values are split: a window holds few."""
    value_codes, labels = codes(
        values.cast(pl.String).fill_null("") if values.null_count() else values
    )
    parts = [label.split("|") for label in labels]
    if len({len(p) for p in parts}) > 1:
        raise ValueError(
            "the controls column must join the same number of levels with '|' on every row; "
            f"found {sorted({len(p) for p in parts})} parts"
        )
    out, sizes = [], []
    for j in range(len(parts[0]) if parts else 0):
        level, names = codes(pl.Series([p[j] for p in parts], dtype=pl.String))
        out.append(level[value_codes])
        sizes.append(len(names))
    return out, sizes


def gram(columns: np.ndarray, w: np.ndarray, p: int) -> np.ndarray:
    """X'WX of an indicator design given by each unit's regressors (columns (units, r))."""
    out = np.zeros(p * p)
    for a in range(columns.shape[1]):
        for b in range(columns.shape[1]):
            out += np.bincount(columns[:, a] * p + columns[:, b], weights=w, minlength=p * p)
    return out.reshape(p, p)


@dataclass(frozen=True)
class ScorecardDesign:
    """The scorecard model y = alpha_cell + sum_k gamma_k(level) + beta_venue over unit types
    (cell, venue, control levels: a unit's regressors depend on its type only, so the normal
    equations, the reference mix and the loadings are computed over the types).

    Regressors: the cells 0 .. n_cells - 1, the venues, then each control's levels.
    unit_type: each unit's type; columns (types, 2 + controls): each type's regressors (its
    cell, venue and control levels, in that order); type_weight: sum w per type."""

    unit_type: np.ndarray
    columns: np.ndarray
    type_weight: np.ndarray
    n_cells: int
    n_regressors: int
    gram: np.ndarray
    gram_pinv: np.ndarray

    def coefficients(self, weight_x_values: np.ndarray) -> np.ndarray:
        """The WLS coefficients (regressors x values) from each unit's sum w y per value."""
        n_types, count = self.columns.shape[0], weight_x_values.shape[1]
        per_type = np.stack(
            [
                np.bincount(self.unit_type, weights=weight_x_values[:, j], minlength=n_types)
                for j in range(count)
            ],
            axis=1,
        )
        xwy = np.zeros((self.n_regressors, count))
        for a in range(self.columns.shape[1]):
            np.add.at(xwy, self.columns[:, a], per_type)
        return self.gram_pinv @ xwy

    def fitted(self, coefficients: np.ndarray) -> np.ndarray:
        """Each unit's fitted value per value (units x values)."""
        return coefficients[self.columns].sum(axis=1)[self.unit_type]


def scorecard_design(
    cell: np.ndarray,
    n_cells: int,
    venue: np.ndarray,
    n_venues: int,
    controls: list[np.ndarray],
    control_sizes: list[int],
    w: np.ndarray,
) -> ScorecardDesign:
    """The scorecard model of units with these cell, venue and control codes and weights."""
    offsets = np.cumsum([n_cells + n_venues, *control_sizes])
    n_regressors = int(offsets[-1])
    unit_type, first = kinds(
        np.stack([cell, venue, *controls], axis=1), [n_cells, n_venues, *control_sizes]
    )
    columns = np.stack(
        [
            cell,
            n_cells + venue,
            *(code + off for code, off in zip(controls, offsets, strict=False)),
        ],
        axis=1,
    )[first]
    type_weight = np.bincount(unit_type, weights=w, minlength=first.size)
    normal = gram(columns, type_weight, n_regressors)
    return ScorecardDesign(
        unit_type, columns, type_weight, n_cells, n_regressors, normal, np.linalg.pinv(normal)
    )


def type_design(columns: np.ndarray, assign: np.ndarray, n_regressors: int) -> np.ndarray:
    """T: regressors x (types x m), column k m + a the regressors of slot a of unit type k."""
    n_types, m = columns.shape[0], assign.shape[1]
    design = np.zeros((n_regressors, n_types, m))
    design[columns, np.arange(n_types)[:, None], assign.argmax(axis=1)] = 1.0
    return design.reshape(n_regressors, n_types * m)


@dataclass(frozen=True)
class WorkingDesign:
    """The working model's design over its unit types: cell effects, venue x flag effects and,
    with a spread, venue x flag slopes on it.

    kind: each unit's type; sigma (units, m, m): each unit's moment block
    [[sum w, sum w s], [sum w s, sum w s^2]] (m = 2, with a spread) or [[sum w]] (m = 1);
    columns (types, r): each type's regressors; assign (r, m): the slot each regressor belongs
    to (slot 0: weight 1, slot 1: weight s); design: T (`type_design`); gram_pinv: N^+ of the
    Gram N = sum_k T_k Sigma_k T_k'."""

    kind: np.ndarray
    sigma: np.ndarray
    columns: np.ndarray
    assign: np.ndarray
    design: np.ndarray
    gram_pinv: np.ndarray


def working_design(units: pl.DataFrame, cell: np.ndarray, sizes: list[int]) -> WorkingDesign:
    """The working model's design of `units` (with venue, optional flag, `WEIGHT` and, for the
    slopes, `WEIGHT_X_SPREAD` and `WEIGHT_X_SPREAD_SQ`); cell (units, r0): each unit's level of
    each of its cell factors, sizes their numbers of levels (the regressors 0 .. sum(sizes) - 1,
    factor by factor)."""
    venue = units["venue"].cast(pl.String)
    vf_key = venue + "|" + units["flag"].cast(pl.String) if "flag" in units.columns else venue
    venue_flag, venue_flag_levels = codes(vf_key.fill_null(""))
    n_vf = len(venue_flag_levels)
    w = units[WEIGHT].to_numpy()
    if WEIGHT_X_SPREAD in units.columns:
        m = 2
        ws, wss = units[WEIGHT_X_SPREAD].to_numpy(), units[WEIGHT_X_SPREAD_SQ].to_numpy()
        sigma = np.stack([w, ws, ws, wss], axis=1).reshape(-1, 2, 2)
    else:
        m = 1
        sigma = w.reshape(-1, 1, 1)
    # The regressors of a unit type: cell and venue x flag indicators (slot 0: weight 1) and
    # the venue x flag spread slope (slot 1: weight s).
    offsets = np.cumsum([0, *sizes])
    n_base = int(offsets[-1])
    q_dim = n_base + m * n_vf
    unit_columns = np.concatenate([cell + offsets[:-1], (n_base + venue_flag)[:, None]], axis=1)
    if m == 2:
        unit_columns = np.concatenate([unit_columns, (n_base + n_vf + venue_flag)[:, None]], axis=1)
    r = unit_columns.shape[1]
    assign = np.zeros((r, m))
    assign[:, 0] = 1.0
    if m == 2:
        assign[-1] = (0.0, 1.0)
    kind, first = kinds(np.concatenate([cell, venue_flag[:, None]], axis=1), [*sizes, n_vf])
    n_k = first.size
    columns = unit_columns[first]
    design = type_design(columns, assign, q_dim)
    sigma_k = np.stack(
        [
            np.bincount(kind, weights=sigma[:, a, b], minlength=n_k)
            for a in range(m)
            for b in range(m)
        ],
        axis=1,
    ).reshape(n_k, m, m)
    weighted = (design.reshape(q_dim, n_k, 1, m) @ sigma_k).reshape(q_dim, n_k * m)
    gram_pinv = np.linalg.pinv(weighted @ design.T)
    return WorkingDesign(kind, sigma, columns, assign, design, gram_pinv)


@dataclass
class WorkingInputs:
    """What the working model needs of the units (`working_inputs`): its own, coarser units
    (venue, flag and moments of each; the parts of a unit sharing its regressors summed), their
    cells and clusters, each unit's coarse unit (None where none are merged), the moments
    (units, m, values) of the coarse units and the finer units' w and w s."""

    coarse_units: pl.DataFrame
    cell: np.ndarray
    n_cells: int
    cluster: np.ndarray
    fine: np.ndarray | None
    moments_y: np.ndarray
    fine_w: np.ndarray
    fine_ws: np.ndarray | None


def working_inputs(
    units: pl.DataFrame, count: int, working_cell: tuple[str, ...], cluster: np.ndarray, n_g: int
) -> WorkingInputs:
    """Read what the working model needs from the units, so that the units can be let go
    before the CR2 series runs. The working model has its cells, venue x flag effects and
    slopes (not the additive controls: docs/VENUES.md, "Confidence intervals"), so it is
    fitted on coarser units, the units' parts sharing cluster, working cell, venue and flag,
    and its scores are split back to the units (`covariance.WorkingModel.fine_scores`)."""
    c_work, n_work = cell_codes(units, working_cell)
    venue, venues = codes(units["venue"])
    keys = [cluster, c_work, venue]
    sizes = [n_g, n_work, len(venues)]
    if "flag" in units.columns:
        flag, flags = codes(units["flag"].cast(pl.String).fill_null(""))
        keys.append(flag)
        sizes.append(len(flags))
    coarse, first = kinds(np.stack(keys, axis=1), sizes)
    fine: np.ndarray | None = coarse
    if first.size == units.height:  # no unit shares its working regressors with another
        fine, first = None, np.arange(units.height)
    slope = WEIGHT_X_SPREAD in units.columns
    m = 2 if slope else 1
    names = [[weight_x_value(j) for j in range(count)]]
    if slope:
        names.append([weight_x_spread_x_value(j) for j in range(count)])

    def summed(name: str) -> np.ndarray:
        values = units[name].to_numpy()
        if fine is None:
            return values.copy()
        return np.bincount(fine, weights=values, minlength=first.size)

    moments_y = np.empty((first.size, m, count))
    for a, row in enumerate(names):
        for j, name in enumerate(row):
            moments_y[:, a, j] = summed(name)
    moments = (WEIGHT, WEIGHT_X_SPREAD, WEIGHT_X_SPREAD_SQ)
    coarse_units = units.select("venue", *(["flag"] if "flag" in units.columns else []))[
        first
    ].with_columns(pl.Series(c, summed(c)) for c in moments if c in units.columns)
    return WorkingInputs(
        coarse_units,
        c_work[first],
        n_work,
        cluster[first],
        fine,
        moments_y,
        units[WEIGHT].to_numpy(),
        units[WEIGHT_X_SPREAD].to_numpy() if slope else None,
    )
