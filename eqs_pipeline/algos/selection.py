"""Per-order algo selection through the cost model (`algo.algo_selection`), and each order's
difficulty.

The question a trader asks of an order is "what would it have cost with another algo?". Its
realized cost under another algo was never observed; the cost model answers with the expected
cost of an order with these arrival features (size, volatility, spread, time, side, limit,
urgency, broker) worked by that algo, with that algo's usual parameters. The order is priced
once per candidate algo: its features are built once (`arrival_features`), then only the
instruction columns change (the algo, the target participation) and the model prices every
order under that algo in one call.

Candidates. A model can only speak for algos it has seen on comparable orders: the candidates
for an order are the algos that the model's training window holds at least
`settings.min_support_orders` orders of in the order's size bucket and at its urgency
(`candidate_support`). An order with none says so, and gets no recommendation.

Urgency stays the trader's. Urgency expresses how much the trader fears the price moving away
(information the model does not see: its expected cost leaves out the risk and the alpha that
make a trader hurry), so a recommendation that always says "be patient" would look cheaper on
paper and be wrong. The recommendation changes the algo and its parameters (the target
participation typical of that algo for orders of this size and urgency) and keeps the order's
urgency, its limit and its broker; `recommended_urgency` states it. The urgency's own effect is
measured on realized costs by the parameter curves (`parameters`).

Difficulty. An order's difficulty is what the model expects it to cost at the desk's algo mix:
the sum over the algos the model knows of the algo's share of the window's arrival notional
times the order's expected cost with that algo. It does not depend on the algo the order got,
so the hard orders an algo is given count as hard whichever algo took them. It does depend on
the order's urgency and limit, which the trader set before the algo. The parameter curves,
which compare those very instructions, bucket orders by the base difficulty instead: the same
sum with every order at the desk's usual urgency and as a market order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from eqs_pipeline.algos.frames import WEIGHT
from eqs_pipeline.algos.settings import SIZE_BUCKETS, AlgoSettings
from eqs_pipeline.core.buckets import UNKNOWN, bucket
from eqs_pipeline.core.contract import ORDER_KEY
from eqs_pipeline.costmodel.features import NUMERIC, arrival_features
from eqs_pipeline.costmodel.weights import forward

if TYPE_CHECKING:
    from eqs_pipeline.core.settings import IngestSettings
    from eqs_pipeline.costmodel.artifact import CostModelArtifact

# What `candidate_support` reads of the training window's rows of `quality.order_quality`.
SUPPORT_INPUTS: tuple[str, ...] = ("algo", "urgency", "size_pct_adv", "target_participation")
# `candidate_support`'s columns.
SUPPORT_COLUMNS: tuple[str, ...] = (
    "algo",
    "size_bucket",
    "urgency",
    "orders",
    "target_orders",
    "typical_target_participation",
)
NO_MODEL = "no cost model in service"
# `algo_selection`'s columns, in the table's order (tables/algo_choice.py describes each).
SELECTION_COLUMNS: tuple[str, ...] = (
    *ORDER_KEY,
    "symbol",
    "side",
    "size_bucket",
    "urgency",
    WEIGHT,
    "algo",
    "target_participation",
    "expected_cost_bps",
    "recommended_algo",
    "recommended_urgency",
    "recommended_target_participation",
    "recommended_expected_cost_bps",
    "expected_saving_bps",
    "candidate_count",
    "candidates",
    "candidate_expected_costs",
    "difficulty_bps",
    "base_difficulty_bps",
    "model_version",
    "note",
)


@dataclass(frozen=True)
class Selection:
    """The per-order selection (`frame`: rows of `algo.algo_selection`, aligned with the
    orders), each order's difficulty and its base difficulty (aligned with the orders; None
    without a model)."""

    frame: pl.DataFrame
    difficulty_bps: pl.Series | None
    base_difficulty_bps: pl.Series | None = None


def size_bucket(settings: AlgoSettings) -> pl.Expr:
    """The order-size bucket of `size_pct_adv` (a fraction of ADV), as `frames.algo_orders`
    computes it."""
    return bucket(pl.col("size_pct_adv") * 100, settings.size_edges_pct_adv, SIZE_BUCKETS)


def _urgency_level() -> pl.Expr:
    return pl.col("urgency").cast(pl.String).fill_null(pl.lit(UNKNOWN))


def candidate_support(
    training_orders: pl.DataFrame | pl.LazyFrame, settings: AlgoSettings
) -> pl.DataFrame:
    """Per algo x size bucket x urgency (`unknown` when not landed) of the cost model's training
    window (rows of `quality.order_quality` with `SUPPORT_INPUTS`): its `orders`, how many carry
    a target participation (`target_orders`) and the typical target
    (`typical_target_participation`: their median where at least half the orders carry one,
    else null, "no target": the algo's usual instruction). Sorted by algo, size bucket and
    urgency."""
    half = pl.col("target_orders") * 2 >= pl.col("orders")
    return (
        training_orders.lazy()
        .filter(pl.col("algo").is_not_null())
        .select(
            pl.col("algo").cast(pl.String),
            size_bucket=size_bucket(settings),
            urgency=_urgency_level(),
            target_participation=pl.col("target_participation").cast(pl.Float64),
        )
        .group_by("algo", "size_bucket", "urgency")
        .agg(
            orders=pl.len().cast(pl.UInt32),
            target_orders=pl.col("target_participation").is_not_null().sum().cast(pl.UInt32),
            median=pl.col("target_participation").median(),
        )
        .with_columns(typical_target_participation=pl.when(half).then(pl.col("median")))
        .select(SUPPORT_COLUMNS)
        .sort("algo", "size_bucket", "urgency")
        .collect()
    )


@dataclass(frozen=True)
class _Cells:
    """The orders' distinct (size_bucket, urgency) pairs and each order's pair (its row in
    `cells`): what depends on the pair only is looked up once per pair, not joined per
    order."""

    cells: pl.DataFrame
    index: np.ndarray


def _cells(keys: pl.DataFrame) -> _Cells:
    cells = keys.unique(maintain_order=True)
    index = keys.join(
        cells.with_row_index("cell"),
        on=["size_bucket", "urgency"],
        how="left",
        maintain_order="left",
    )["cell"]
    return _Cells(cells, index.to_numpy().astype(np.int64))


def _typical_targets(
    cells: _Cells, support: pl.DataFrame, algo: str, settings: AlgoSettings
) -> tuple[np.ndarray, np.ndarray]:
    """Per order (`cells`: its size_bucket and urgency), algo `algo`'s typical target participation
    (NaN: no target) and whether `algo` is a candidate (enough training orders in the order's
    size bucket at its urgency). Where the order's own cell holds no order of the algo (the
    difficulty still prices the order with it), the typical target of the algo's orders at the
    same urgency, else of all its orders, weighted by the orders carrying one."""
    mine = support.filter(pl.col("algo") == algo)

    def pooled(by: list[str]) -> pl.DataFrame:
        has = mine.filter(pl.col("typical_target_participation").is_not_null())
        w = pl.col("target_orders").cast(pl.Float64)
        agg = (pl.col("typical_target_participation") * w).sum() / w.sum()
        return has.group_by(by).agg(agg.alias("t")) if by else has.select(agg.alias("t"))

    cell = mine.select(
        "size_bucket", "urgency", "orders", t0=pl.col("typical_target_participation")
    )
    joined = cells.cells.join(
        cell, on=["size_bucket", "urgency"], how="left", maintain_order="left"
    )
    by_urgency = pooled(["urgency"]).rename({"t": "t1"})
    joined = joined.join(by_urgency, on="urgency", how="left", maintain_order="left")
    overall = pooled([])["t"]
    has_cell = pl.col("orders").is_not_null()
    target = (
        pl.when(has_cell)
        .then(pl.col("t0"))
        .otherwise(pl.coalesce("t1", pl.lit(overall[0] if overall.len() else None, pl.Float64)))
    )
    out = joined.select(
        target=target.cast(pl.Float64),
        candidate=pl.col("orders").fill_null(0) >= settings.min_support_orders,
    )
    target = out["target"].to_numpy().astype(np.float64)
    return target[cells.index], out["candidate"].to_numpy()[cells.index]


_KEEP = object()  # `Pricer.price`: leave the order's own value


class Pricer:
    """The cost model's expected cost of the orders (rows of `arrival_features`) under other
    instructions. The design matrix (`FeatureSpec.matrix`) is built once; a variant rewrites
    only the columns of the instructions it changes, the way the matrix encodes them, and runs
    the network's forward pass (`weights.forward`). That is what `CostModelArtifact.predict`
    computes for `expected_cost_bps` without building the matrix again nor pricing the
    baselines: a third of the time per algo (`test_selection` checks that both agree)."""

    def __init__(self, artifact: CostModelArtifact, features: pl.DataFrame) -> None:
        # Here, not at the module's top: the artifact module imports scipy, which the CLI and
        # the Dagster code location must not load.
        from eqs_pipeline.costmodel.artifact import PREDICT_BLOCK

        spec = artifact.spec
        self._weights = artifact.weights
        self._target_scale = spec.target_scale
        self._means, self._stds = np.asarray(spec.means), np.asarray(spec.stds)
        self.usable = features["model_null_reason"].is_null().to_numpy()
        rows = features.filter(pl.Series(self.usable))
        blocks = list(rows.iter_slices(PREDICT_BLOCK))
        self._matrix = (
            np.concatenate([spec.matrix(b) for b in blocks])
            if blocks
            else np.zeros((0, spec.width), dtype=np.float32)
        )
        self._scales = (
            np.concatenate([spec.scales(b) for b in blocks])
            if blocks
            else np.zeros((0, 2), dtype=np.float32)
        )
        self._one_hots: dict[str, tuple[int, tuple[str, ...]]] = {}
        offset = len(NUMERIC)
        for column, values in spec.categories:
            self._one_hots[column] = (offset, values)
            offset += len(values)

    def _numeric(self, x: np.ndarray, name: str, values: np.ndarray | float) -> None:
        j = NUMERIC.index(name)
        x[:, j] = np.nan_to_num((values - self._means[j]) / self._stds[j])

    def _category(self, x: np.ndarray, column: str, value: str | None) -> None:
        """Set every row's `column` to `value`: its one-hot, or none for a category the model
        never saw (as `FeatureSpec.matrix` scores it)."""
        offset, values = self._one_hots[column]
        x[:, offset : offset + len(values)] = 0.0
        if value in values:
            x[:, offset + values.index(value)] = 1.0

    def price(
        self,
        algo: object = _KEEP,
        target: np.ndarray | None = None,
        urgency: object = _KEEP,
        market: bool = False,
    ) -> np.ndarray:
        """Per order (NaN where the model cannot price it): the expected cost in bps worked by
        `algo`, with target participation `target` (per order, NaN: none), at `urgency`
        (None: not given), and with `market` as a market order (no limit)."""
        x = self._matrix.copy()
        if algo is not _KEEP:
            self._category(x, "algo", algo)  # type: ignore[arg-type]
        if target is not None:
            mine = target[self.usable]
            known = ~np.isnan(mine)
            self._numeric(x, "target_participation", np.where(known, mine, 0.0))
            self._numeric(x, "target_participation_known", known.astype(np.float64))
        if urgency is not _KEEP:
            self._category(x, "urgency", urgency)  # type: ignore[arg-type]
        if market:
            self._category(x, "order_type", "MARKET")
            self._numeric(x, "limit_distance_sigma", 0.0)
        location, _ = forward(self._weights, x, self._scales)
        out = np.full(self.usable.size, np.nan)
        out[self.usable] = location * self._target_scale
        return out


def _desk_mix(orders: pl.DataFrame, algos: tuple[str, ...]) -> dict[str, float]:
    """The window's arrival-notional shares of the algos the model knows."""
    notional = (
        orders.filter(pl.col("algo").is_in(algos) & (pl.col(WEIGHT) > 0))
        .group_by("algo")
        .agg(pl.col(WEIGHT).sum())
    )
    total = float(notional[WEIGHT].sum()) if notional.height else 0.0
    if total <= 0:
        return {}
    return {a: float(w) / total for a, w in notional.iter_rows()}


def reference_urgency(orders: pl.DataFrame) -> str | None:
    """The desk's usual urgency: the landed urgency with the largest share of the window's
    arrival notional (None when no order has one)."""
    known = orders.filter(pl.col("urgency") != UNKNOWN, pl.col(WEIGHT) > 0)
    if known.height == 0:
        return None
    by = known.group_by("urgency").agg(pl.col(WEIGHT).sum()).sort(WEIGHT, "urgency")
    return by["urgency"][-1]


def _base_difficulty(
    pricer: Pricer,
    orders: pl.DataFrame,
    support: pl.DataFrame,
    mix: dict[str, float],
    settings: AlgoSettings,
) -> np.ndarray:
    """Each order's expected cost at the desk's algo mix, worked at the desk's usual urgency
    (`reference_urgency`) as a market order, each algo with its typical target there: what
    the order is before the trader's instructions (NaN where it cannot be priced). The
    parameter curves bucket orders by it: a bucket that an instruction itself moves orders
    into would compare, within it, urgent orders that are otherwise easy with patient ones
    that are otherwise hard."""
    urgency = reference_urgency(orders)
    keys = _cells(orders.select("size_bucket", urgency=pl.lit(urgency or UNKNOWN)))
    out = np.zeros(orders.height) if mix else np.full(orders.height, np.nan)
    for algo, share in mix.items():
        target, _ = _typical_targets(keys, support, algo, settings)
        out += share * pricer.price(algo=algo, target=target, urgency=urgency, market=True)
    return out


def _no_model(base: pl.DataFrame) -> Selection:
    frame = base.with_columns(
        expected_cost_bps=pl.lit(None, pl.Float64),
        recommended_algo=pl.lit(None, pl.String),
        recommended_urgency=pl.lit(None, pl.String),
        recommended_target_participation=pl.lit(None, pl.Float64),
        recommended_expected_cost_bps=pl.lit(None, pl.Float64),
        expected_saving_bps=pl.lit(None, pl.Float64),
        candidate_count=pl.lit(None, pl.UInt32),
        candidates=pl.lit(None, pl.String),
        candidate_expected_costs=pl.lit(None, pl.String),
        difficulty_bps=pl.lit(None, pl.Float64),
        base_difficulty_bps=pl.lit(None, pl.Float64),
        model_version=pl.lit(None, pl.String),
        note=pl.lit(NO_MODEL),
    ).select(SELECTION_COLUMNS)
    return Selection(frame, None)


def _null_reason_words() -> pl.Expr:
    reason = pl.col("model_null_reason")
    return (
        pl.when(reason == "no_arrival_quote")
        .then(pl.lit("no arrival quote: the cost model cannot price the order"))
        .when(reason == "unknown_instrument")
        .then(pl.lit("unknown instrument (no ADV): the cost model cannot price the order"))
        .when(reason.is_not_null())
        .then(pl.format("the cost model cannot price the order ({})", reason))
    )


def algo_selection(
    orders: pl.DataFrame,
    instruments: pl.DataFrame | pl.LazyFrame,
    artifact: CostModelArtifact | None,
    support: pl.DataFrame,
    settings: AlgoSettings,
    ingest: IngestSettings | None = None,
) -> Selection:
    """The selection of the window's orders (`frames.algo_orders` rows; `instruments` as the
    quality engine reads them) with the cost model in service (None: every row says so) and
    its training window's `candidate_support`.

    Per order: the model's expected cost with the algo it got (`expected_cost_bps`), the
    cheapest candidate with its parameters (`recommended_*`), the saving, the candidates and
    their expected costs, and the order's difficulty. An order keeps its algo (and its own
    parameters) unless a candidate is expected to save at least `settings.min_saving_bps`."""
    base = orders.select(
        *ORDER_KEY,
        "symbol",
        pl.col("side").cast(pl.String),
        "size_bucket",
        pl.col("urgency_level").alias("urgency"),
        WEIGHT,
        pl.col("algo").cast(pl.String),
        pl.col("target_participation").cast(pl.Float64),
    )
    if artifact is None:
        return _no_model(base)
    features = arrival_features(orders, instruments, ingest)
    known_algos = dict(artifact.spec.categories)["algo"]
    keys = _cells(base.select("size_bucket", "urgency"))
    mix = _desk_mix(base, known_algos)
    supported = support.filter(pl.col("orders") >= settings.min_support_orders)
    algos = sorted(set(known_algos) & (set(mix) | set(supported["algo"].to_list())))

    pricer = Pricer(artifact, features)
    own = np.where(base["algo"].is_in(known_algos).to_numpy(), pricer.price(), np.nan)
    n, k = base.height, len(algos)
    cost = np.full((n, k), np.nan)
    target = np.full((n, k), np.nan)
    candidate = np.zeros((n, k), dtype=bool)
    for j, algo in enumerate(algos):
        target[:, j], candidate[:, j] = _typical_targets(keys, support, algo, settings)
        cost[:, j] = pricer.price(algo=algo, target=target[:, j])
    candidate &= np.isfinite(cost)

    if mix:
        weights = np.array([mix.get(a, 0.0) for a in algos])
        mixed = weights > 0
        difficulty = cost[:, mixed] @ weights[mixed]  # NaN where the order cannot be priced
    else:
        difficulty = np.full(n, np.nan)
    base_difficulty = _base_difficulty(pricer, base, support, mix, settings)

    masked = np.where(candidate, cost, np.inf)
    best = masked.argmin(axis=1) if k else np.zeros(n, dtype=np.int64)
    rows = np.arange(n)
    has_candidate = candidate.any(axis=1)
    best_cost = np.where(has_candidate, masked[rows, best] if k else np.nan, np.nan)
    best_target = target[rows, best] if k else np.full(n, np.nan)
    saving = own - best_cost
    switch = has_candidate & np.isfinite(own) & (saving >= settings.min_saving_bps)
    algo_names = np.array(algos if k else [""], dtype=object)

    per_algo = pl.DataFrame(
        {f"cost_{j}": cost[:, j] for j in range(k)}
        | {f"cand_{j}": candidate[:, j] for j in range(k)}
        | {"row": np.arange(n)}  # the frame's height when no algo is priced
    ).with_columns(pl.col("^cost_.*$").fill_nan(None))
    listed = [pl.when(pl.col(f"cand_{j}")).then(pl.lit(a)) for j, a in enumerate(algos)]
    priced_list = [
        pl.when(pl.col(f"cand_{j}")).then(
            pl.format("{} {} bps", pl.lit(a), pl.col(f"cost_{j}").round(1))
        )
        for j, a in enumerate(algos)
    ]
    # with_columns, not select: with no algo priced, the literals take the frame's height.
    lists = per_algo.with_columns(
        candidates=pl.concat_str(listed, separator=", ", ignore_nulls=True) if k else pl.lit(""),
        candidate_expected_costs=pl.concat_str(priced_list, separator=", ", ignore_nulls=True)
        if k
        else pl.lit(""),
    ).select("candidates", "candidate_expected_costs")

    frame = pl.concat(
        [
            base,
            features.select("model_null_reason"),
            lists,
            pl.DataFrame(
                {
                    "own": own,
                    "best_algo": algo_names[best],
                    "best_cost": best_cost,
                    "best_target": best_target,
                    "has_candidate": has_candidate,
                    "switch": switch,
                    "candidate_count": candidate.sum(axis=1).astype(np.uint32),
                    "difficulty_bps": difficulty,
                    "base_difficulty_bps": base_difficulty,
                },
                schema_overrides={"best_algo": pl.String},
            ),
        ],
        how="horizontal",
    ).with_columns(
        pl.col("own", "best_cost", "best_target", "difficulty_bps", "base_difficulty_bps").fill_nan(
            None
        )
    )
    frame = frame.with_columns(_outcome(settings, known_algos)).with_columns(
        model_version=pl.lit(artifact.version)
    )
    difficulty_bps = frame["difficulty_bps"].alias("difficulty_bps")
    return Selection(frame.select(SELECTION_COLUMNS), difficulty_bps, frame["base_difficulty_bps"])


def _outcome(settings: AlgoSettings, known_algos: tuple[str, ...]) -> list[pl.Expr]:
    """The published columns of a priced selection frame: what the order got, what is
    recommended and why (`note`)."""
    priced = pl.col("model_null_reason").is_null()
    known = pl.col("algo").is_in(known_algos)
    compared = priced & known & pl.col("has_candidate")
    switch = pl.col("switch")
    keep = compared & ~switch
    recommended_algo = pl.when(switch).then(pl.col("best_algo")).when(keep).then(pl.col("algo"))
    recommended_target = (
        pl.when(switch).then(pl.col("best_target")).when(keep).then(pl.col("target_participation"))
    )
    recommended_cost = pl.when(switch).then(pl.col("best_cost")).when(keep).then(pl.col("own"))
    saving = pl.when(compared).then(pl.col("own") - recommended_cost)
    m = settings.min_saving_bps
    note = (
        pl.when(~priced)
        .then(_null_reason_words())
        .when(~known)
        .then(
            pl.format(
                "the cost model does not know the algo {} (none in its training window): it "
                "cannot compare the order's algo with others",
                pl.col("algo").fill_null("(none)"),
            )
        )
        .when(~pl.col("has_candidate"))
        .then(
            pl.format(
                "no candidate: the cost model's training window holds no algo with at least "
                f"{settings.min_support_orders} orders of this size ({{}}) and urgency ({{}})",
                "size_bucket",
                "urgency",
            )
        )
        .when(
            keep & (pl.col("best_algo") != pl.col("algo")) & (pl.col("best_cost") >= pl.col("own"))
        )
        .then(pl.lit("keeps its algo: no candidate is expected to cost less"))
        .when(keep & (pl.col("best_algo") != pl.col("algo")))
        .then(
            pl.format(
                "keeps its algo: the cheapest candidate, {}, is expected to save {} bps, "
                f"below min_saving_bps ({m:g})",
                "best_algo",
                (pl.col("own") - pl.col("best_cost")).round(2),
            )
        )
        .when(switch & ~pl.col("candidates").str.split(", ").list.contains(pl.col("algo")))
        .then(
            pl.lit(
                "its own algo is no candidate for orders of this size and urgency (too few in "
                "the model's training window): its expected cost is less certain"
            )
        )
    )
    return [
        pl.when(priced & known).then(pl.col("own")).alias("expected_cost_bps"),
        recommended_algo.alias("recommended_algo"),
        pl.when(recommended_algo.is_not_null())
        .then(pl.col("urgency"))
        .alias("recommended_urgency"),
        recommended_target.alias("recommended_target_participation"),
        recommended_cost.alias("recommended_expected_cost_bps"),
        saving.alias("expected_saving_bps"),
        pl.when(priced).then(pl.col("candidate_count")).alias("candidate_count"),
        pl.when(priced).then(pl.col("candidates")).alias("candidates"),
        pl.when(priced).then(pl.col("candidate_expected_costs")).alias("candidate_expected_costs"),
        note.alias("note"),
    ]
