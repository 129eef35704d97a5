"""The entry points: `adjusted_means` (one metric), `adjusted_means_many` (several metrics of
one frame), `adjusted_means_designs` (several models of one frame: the scorecard across and
within style) and `adjusted_means_strata` (one model per stratum of one frame, which
`strata.stratified_means` combines), which share what does not depend on the metric or the
model.

One call groups the values by the rows that enter them (known value, positive weight), sums
each group's rows into units (`design.unit_sums`), computes the working model's CR2 scores once
(conditional method) and then, per model, its design, reference contrasts, influences and
intervals. docs/VENUES.md, "Several metrics at once".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from eqs_pipeline.stats.covariance import (
    cluster_influences,
    residual_scores,
    working_scores,
)
from eqs_pipeline.stats.design import (
    ROWS,
    WEIGHT,
    as_expr,
    categorical,
    cell_codes,
    codes,
    control_codes,
    known,
    scorecard_design,
    unit_sums,
    weight_x_value,
    working_inputs,
)
from eqs_pipeline.stats.groups import Reference, check_reference, reference_contrasts
from eqs_pipeline.stats.inference import (
    MIN_VENUE_CLUSTERS,
    Method,
    VenueEstimates,
    VenueFacts,
    check_method,
    empty_estimates,
    venue_clusters,
    venue_estimates,
)


@dataclass(frozen=True)
class Design:
    """A model of `adjusted_means_designs`: its cell, the columns (names or expressions of the
    frame) whose combination is a cell (() for one cell), and its reference ("largest": every
    venue at the mix of the largest comparison group; "component": each at its own group's)."""

    cell: tuple[str | pl.Expr, ...] = ()
    reference: Reference = "largest"
    values: tuple[str, ...] | None = None  # the values it estimates; None: all of them


@dataclass(frozen=True)
class _UnitFacts:
    """What every model of one set of units shares: each unit's weight, venue, cluster and
    control levels (codes), the venues and clusters, the clusters' labels, each venue's rows
    and distinct clusters."""

    w: np.ndarray
    venue: np.ndarray
    venues: list[str]
    cluster: np.ndarray
    n_clusters: int
    cluster_labels: pl.Series
    controls: list[np.ndarray]
    control_sizes: list[int]
    counts: np.ndarray
    venue_clusters: np.ndarray


@dataclass(frozen=True)
class _ModelSpec:
    """One model of a group of values: its cell key columns, reference and which values of the
    group it estimates."""

    cell: tuple[str, ...]
    reference: Reference
    which: list[int]


def _unit_facts(units: pl.DataFrame) -> _UnitFacts:
    venue, venues = codes(units["venue"])
    cluster, clusters = codes(units["cluster"])
    if "controls" in units.columns:
        controls, sizes = control_codes(units["controls"])
    else:
        controls, sizes = [], []
    n_v, n_g = len(venues), len(clusters)
    return _UnitFacts(
        w=units[WEIGHT].to_numpy(),
        venue=venue,
        venues=venues,
        cluster=cluster,
        n_clusters=n_g,
        # One column of labels for every metric's influences (the frames share its buffer).
        cluster_labels=pl.Series("cluster", clusters, dtype=pl.String),
        controls=controls,
        control_sizes=sizes,
        counts=np.bincount(venue, weights=units[ROWS].to_numpy(), minlength=n_v),
        venue_clusters=venue_clusters(venue, cluster, n_v, n_g),
    )


def _model_estimates(
    cell: tuple[np.ndarray, int],
    wys: np.ndarray,
    facts: _UnitFacts,
    reference: Reference,
    working: np.ndarray | None,
    level: float,
) -> list[VenueEstimates]:
    """One scorecard model's estimates of every value (columns of `wys`: each unit's sum w y),
    from each unit's cell, what every model shares and, for the conditional method, the working
    model's CR2 scores (`working`; without them, CR1 from the model's own residuals)."""
    c_idx, n_c = cell
    n_v = len(facts.venues)
    design = scorecard_design(
        c_idx, n_c, facts.venue, n_v, facts.controls, facts.control_sizes, facts.w
    )
    ref = reference_contrasts(design, c_idx, facts.venue, n_v, facts.w, reference)
    coefficients = design.coefficients(wys)  # regressors x values
    estimates = ref.contrasts @ coefficients  # venues x values
    scores = residual_scores(design, coefficients, wys, facts.w) if working is None else working
    loadings = ref.contrasts @ design.gram_pinv  # venues x regressors
    influences = cluster_influences(loadings, design, scores, facts.cluster, facts.n_clusters)
    published = VenueFacts(
        venues=facts.venues,
        counts=facts.counts,
        group=ref.venue_group,
        peers=ref.peers,
        estimable=ref.estimable,
        identified=ref.estimable & (facts.venue_clusters >= MIN_VENUE_CLUSTERS),
        cluster_labels=facts.cluster_labels,
    )
    method: Method = "cr1" if working is None else "conditional"
    return venue_estimates(estimates, influences, published, level, method)


def _estimates(
    handed: list[pl.DataFrame],
    count: int,
    level: float,
    method: Method,
    models: dict[str, _ModelSpec],
    working_cell: tuple[str, ...],
) -> dict[str, list[VenueEstimates]]:
    """The estimates of values 0 .. count - 1 of the units (`design.unit_sums`, handed over as
    the only item of `handed`, so that their columns are freed once read) under each model,
    sharing the units and the working model's CR2 scores."""
    units = handed.pop()
    facts = _unit_facts(units)
    cells = {name: cell_codes(units, spec.cell) for name, spec in models.items()}
    wys = np.stack([units[weight_x_value(j)].to_numpy() for j in range(count)], axis=1)
    conditional = method == "conditional"
    inputs = (
        working_inputs(units, count, working_cell, facts.cluster, facts.n_clusters)
        if conditional
        else None
    )
    del units  # the group-by's keys and moments: every array needed has been read
    scores = working_scores(inputs, wys, facts.n_clusters) if inputs is not None else None
    del inputs
    return {
        name: _model_estimates(
            cells[name],
            wys[:, spec.which],
            facts,
            spec.reference,
            None if scores is None else scores[:, spec.which],
            level,
        )
        for name, spec in models.items()
    }


def _same_part(a: str | pl.Expr, b: str | pl.Expr) -> bool:
    """The same cell column: one name, or one expression object."""
    return a is b or (isinstance(a, str) and isinstance(b, str) and a == b)


def _cell_parts(cell: str | pl.Expr | tuple | None) -> tuple[str | pl.Expr, ...]:
    if cell is None:
        return ()
    return tuple(cell) if isinstance(cell, tuple | list) else (cell,)


@dataclass(frozen=True)
class _UnitKeys:
    """The group-by keys of the units (name -> expression) and, by key name, each model's cell
    and the working model's cell; `flag_column`: the key that holds the flag where the flag is
    one of the cells' columns (grouped on once), else None."""

    keys: dict[str, pl.Expr]
    cells: dict[str, tuple[str, ...]]
    working_cell: tuple[str, ...]
    flag_column: str | None


def _unit_keys(
    frame: pl.DataFrame,
    designs: dict[str, Design],
    working_cell: tuple[str | pl.Expr, ...],
    venue: str,
    cluster: str,
    controls: str | pl.Expr | None,
    flag: str | None,
) -> _UnitKeys:
    """One key per distinct cell part (a column by its name, an expression by its position:
    `cell_part_<i>`), the cluster, the venue, the controls and the working model's flag."""

    def key(part: str | pl.Expr) -> pl.Expr:
        # A categorical or enum column (the window's, `defs.venues.window`) is grouped on as it is.
        if isinstance(part, str) and isinstance(frame.schema[part], pl.Categorical | pl.Enum):
            return pl.col(part)
        return categorical(as_expr(part))

    parts: list[str | pl.Expr] = []
    for part in [*working_cell, *(p for d in designs.values() for p in d.cell)]:
        if not any(_same_part(part, q) for q in parts):
            parts.append(part)

    def part_key(part: str | pl.Expr) -> str:
        return next(f"cell_part_{i}" for i, q in enumerate(parts) if _same_part(part, q))

    keys = {"cluster": key(cluster), "venue": key(venue)}
    keys |= {part_key(part): key(part) for part in parts}
    if controls is not None:
        keys["controls"] = key(controls)
    flag_column = None
    if flag:
        flag_column = next((part_key(p) for p in parts if _same_part(flag, p)), None)
        if flag_column is None:
            keys["flag"] = key(flag)
    return _UnitKeys(
        keys,
        {name: tuple(part_key(p) for p in d.cell) for name, d in designs.items()},
        tuple(part_key(p) for p in working_cell),
        flag_column,
    )


def _groups_by_rows(frame: pl.DataFrame, values: list[str], entering: dict) -> list[list[str]]:
    """The values grouped by their set of entering rows (`entering`: value -> the expression
    of its mask): values with equal masks share the units, the designs and the CR2 machinery."""
    if len(values) == 1:
        return [values]
    masks = frame.select(**entering)
    groups: list[list[str]] = []
    representatives: list[pl.Series] = []
    for v in values:
        mask = masks[v]
        for group, rep in zip(groups, representatives, strict=True):
            if mask.equals(rep):
                group.append(v)
                break
        else:
            groups.append([v])
            representatives.append(mask)
    return groups


def adjusted_means_designs(
    frame: pl.DataFrame,
    values: list[str] | tuple[str, ...],
    weight: str = "qty",
    *,
    designs: dict[str, Design],
    working_cell: tuple[str | pl.Expr, ...] = (),
    venue: str = "venue",
    cluster: str = "cluster",
    level: float = 0.95,
    method: Method = "cr1",
    flag: str | None = None,
    spread: str | None = None,
    controls: str | pl.Expr | None = None,
    derived: dict[str, pl.Expr] | None = None,
) -> dict[str, dict[str, VenueEstimates]]:
    """`adjusted_means` of every column of `values` under several designs of the same frame
    (design -> value -> estimates); `derived` names values that are expressions of the
    frame's columns, evaluated where the units are summed (never held as a column). Everything
    that does not depend on the design is computed once: the values whose rows enter (known
    value, positive weight) are the same share one group-by over units keyed by every design's
    cell columns, and, for the conditional method, the working model (`working_cell` cells,
    venue x `flag` effects, venue x flag slopes on `spread`) with its CR2 leverage machinery
    and scores; a value with another set of rows gets its own (docs/VENUES.md, "Computation at
    scale"). Each design then costs its own normal equations and a pass over the units for its
    influences."""
    check_method(method)
    for design in designs.values():
        check_reference(design.reference)
    values = list(dict.fromkeys(values))
    if not values or not designs:
        return {name: {} for name in designs}
    conditional = method == "conditional"
    derived = derived or {}

    def value_of(name: str) -> str | pl.Expr:
        return derived.get(name, name)

    unit_keys = _unit_keys(
        frame, designs, working_cell, venue, cluster, controls, flag if conditional else None
    )
    slope = (
        pl.col(spread).cast(pl.Float64).fill_nan(None).fill_null(0.0)
        if conditional and spread
        else None
    )
    wanted = {n: set(values if d.values is None else d.values) for n, d in designs.items()}
    groups = _groups_by_rows(frame, values, {v: known(value_of(v), weight) for v in values})
    out: dict[str, dict[str, VenueEstimates]] = {name: {} for name in designs}
    for group in groups:
        units = unit_sums(frame, [value_of(v) for v in group], weight, unit_keys.keys, slope)
        if unit_keys.flag_column is not None:
            units = units.with_columns(flag=pl.col(unit_keys.flag_column))
        if units.height == 0:
            for name in designs:
                out[name] |= {v: empty_estimates() for v in group if v in wanted[name]}
            continue
        models = {
            name: _ModelSpec(unit_keys.cells[name], d.reference, which)
            for name, d in designs.items()
            if (which := [j for j, v in enumerate(group) if v in wanted[name]])
        }
        handed = [units]
        del units
        estimates = _estimates(handed, len(group), level, method, models, unit_keys.working_cell)
        for name, results in estimates.items():
            out[name] |= dict(zip([group[j] for j in models[name].which], results, strict=True))
    return {name: {v: out[name][v] for v in values if v in out[name]} for name in designs}


def adjusted_means_strata(
    frame: pl.DataFrame,
    values: list[str] | tuple[str, ...],
    weight: str,
    strata: tuple[str, ...],
    *,
    venue: str = "venue",
    cluster: str = "cluster",
    level: float = 0.95,
    method: Method = "cr1",
    controls: str | pl.Expr | None = None,
) -> list[tuple[tuple[str, ...], dict[str, float], dict[str, VenueEstimates]]]:
    """`adjusted_means_many` with `cell=None` on each stratum's rows (the distinct combinations
    of the `strata` columns), from one group-by of the rows into units keyed by the strata too:
    per stratum (sorted by its levels, as text) its key, the weight of each value's rows in it
    (known value, positive weight) and each value's estimates, where the value has rows there.
    Each stratum is a model of its own: its venues at its pooled mix of the controls, its
    clusters' influences (`stats.strata` combines them)."""
    check_method(method)
    values = list(dict.fromkeys(values))
    out: dict[tuple[str, ...], tuple[dict[str, float], dict[str, VenueEstimates]]] = {}
    if not values:
        return []
    unit_keys = _unit_keys(
        frame, {"strata": Design(tuple(strata))}, (), venue, cluster, controls, None
    )
    names = list(unit_keys.cells["strata"])
    groups = _groups_by_rows(frame, values, {v: known(v, weight) for v in values})
    for group in groups:
        units = unit_sums(frame, list(group), weight, unit_keys.keys, None)
        if units.height == 0:
            continue
        parts = units.partition_by(names, as_dict=True) if names else {(): units}
        del units
        model = {"": _ModelSpec((), "largest", list(range(len(group))))}
        while parts:
            key, part = parts.popitem()
            total = float(part[WEIGHT].sum())
            results = _estimates([part], len(group), level, method, model, ())[""]
            weights, estimates = out.setdefault(tuple(str(k) for k in key), ({}, {}))
            for v, result in zip(group, results, strict=True):
                weights[v] = total
                estimates[v] = result
    return [(key, *out[key]) for key in sorted(out)]


def adjusted_means_many(
    frame: pl.DataFrame,
    values: list[str] | tuple[str, ...],
    weight: str = "qty",
    *,
    cell: str | pl.Expr | tuple | None = "cell",
    venue: str = "venue",
    cluster: str = "cluster",
    level: float = 0.95,
    method: Method = "cr1",
    flag: str | None = None,
    spread: str | None = None,
    controls: str | pl.Expr | None = None,
    reference: Reference = "largest",
    working_cell: str | pl.Expr | tuple | None = None,
) -> dict[str, VenueEstimates]:
    """`adjusted_means` of every column of `values` (same arguments), equal to one call per
    value but computing what does not depend on the metric once (`adjusted_means_designs` with
    one design; its cells are the working model's unless `working_cell` is given)."""
    parts = _cell_parts(cell)
    return adjusted_means_designs(
        frame,
        values,
        weight,
        designs={"": Design(parts, reference)},
        working_cell=parts if working_cell is None else _cell_parts(working_cell),
        venue=venue,
        cluster=cluster,
        level=level,
        method=method,
        flag=flag,
        spread=spread,
        controls=controls,
    )[""]


def adjusted_means(
    frame: pl.DataFrame,
    value: str,
    weight: str = "qty",
    *,
    cell: str | pl.Expr | tuple | None = "cell",
    venue: str = "venue",
    cluster: str = "cluster",
    level: float = 0.95,
    method: Method = "cr1",
    flag: str | None = None,
    spread: str | None = None,
    controls: str | pl.Expr | None = None,
    reference: Reference = "largest",
    working_cell: str | pl.Expr | tuple | None = None,
) -> VenueEstimates:
    """Mix-adjusted mean of `value` per venue, with cluster-robust intervals (docs/VENUES.md,
    "Mix adjustment (scorecard): the statistics" and "Confidence intervals").

    `cell` is a column name, an expression of the frame's columns or a tuple of them (whose
    combination is the cell: the scorecard's liquidity and size buckets). With `cell=None`
    there is one cell and the estimate is the venue's plain weighted mean, with the same
    cluster-robust interval. `controls` names a column joining the levels of additive controls
    with "|"; `reference` is "largest" or "component" (`groups`). A categorical or enum
    cell, venue, cluster, control or flag column is grouped on as it is. `method` is "cr1" or
    "conditional"; the latter's working model has the cells of `working_cell` (default: the
    model's), uses the `flag` column (venue x flag effects) and the `spread` column (venue x
    flag slopes; a missing spread counts as 0) when given. Several metrics of one frame:
    `adjusted_means_many`; several models: `adjusted_means_designs`.
    """
    return adjusted_means_many(
        frame,
        [value],
        weight,
        cell=cell,
        venue=venue,
        cluster=cluster,
        level=level,
        method=method,
        flag=flag,
        spread=spread,
        controls=controls,
        reference=reference,
        working_cell=working_cell,
    )[value]
