"""The algo wheel's unbiased comparison (docs/ALGOS.md, "The wheel").

On the orders an algo wheel allocated (`allocation == "wheel"`), which algo worked an order was
drawn at random, so nothing the trader knew about the order decided it: a plain comparison of
the algos' shortfalls on those orders needs no model of the difficulty. Where the wheel draws
with unequal probabilities (more often the favoured algo, or differently on some days), the
orders are weighted by the inverse of the probability of the algo drawn (Hajek's estimator):

    mu_a = sum_{i: A_i = a} (N_i / p_i) y_i / sum_{i: A_i = a} N_i / p_i

with N_i the order's arrival notional and p_i = `allocation_prob`. mu_a estimates what the
whole wheel flow would have cost, notional-weighted, had algo a worked every order of it. A
wheel order without a probability counts as equally likely among the algos the wheel drew on
its trade date (the contract's rule, `tables.staging`).

The estimate and its interval are `stats.adjusted_means` with one cell and the weight N / p:
its estimate is Hajek's ratio, and its cluster influence, sum_{i in g, A_i = a} w_i (y_i -
mu_a) / W_a, is the linearization of the ratio (the denominator's randomness is in the
residual y_i - mu_a), so sum_g IF_g^2 is the cluster-robust sandwich variance of Hajek's
estimator with known probabilities. The difference of two algos takes the difference of their
influences, cluster by cluster (they share the clusters). The residuals get the CR2
(Bell-McCaffrey) leverage correction and the t its effective number of clusters (`stats`'
"conditional" method, whose working model is here the model itself: one cell, algo effects),
whatever `settings.ci_method` says: inverse-propensity weights are uneven, so a wheel's
estimate rests on fewer effective clusters than it has, and CR1 with t(G - 1) covers below
its level on a wheel of a few hundred orders.

The sample size: with the standard error of a difference shrinking as 1 / sqrt(n) in the
number of wheel orders n (more orders at the current probabilities, in more clusters like the
current ones), the difference d is separated with power 1 - beta at level alpha (two-sided)
once d / se(n) >= c + z_{1 - beta}, i.e. at n_total = n ((c + z_{1 - beta}) se / |d|)^2 wheel
orders; `wheel_orders_needed` = ceil(n_total - n), 0 when the interval already excludes 0. c is
the interval's own critical value (t with its degrees of freedom, which tends to z_{1 -
alpha/2} as clusters grow), so an algo not yet separated always needs more orders.
"""

from __future__ import annotations

import math

import polars as pl

from eqs_pipeline.algos.frames import WEIGHT
from eqs_pipeline.algos.settings import AlgoSettings
from eqs_pipeline.stats import Method, adjusted_means, influence_se, influence_t

WHEEL = "wheel"
METRIC = "implementation_shortfall_bps"
# CR2 with t of the effective clusters, whatever the scorecard's method (the module's docstring).
WHEEL_METHOD: Method = "conditional"
# The inverse-propensity weight of a wheel order (a column of the wheel's frame only).
IPW = "wheel_weight"
# The columns the comparison adds to the algo scorecard, in order.
COLUMNS: dict[str, pl.DataType] = {
    "wheel_orders": pl.UInt32(),
    f"wheel_{METRIC}": pl.Float64(),
    f"wheel_{METRIC}_ci_low": pl.Float64(),
    f"wheel_{METRIC}_ci_high": pl.Float64(),
    "wheel_difference_to_best_bps": pl.Float64(),
    "wheel_difference_to_best_bps_ci_low": pl.Float64(),
    "wheel_difference_to_best_bps_ci_high": pl.Float64(),
    "wheel_orders_needed": pl.Int64(),
    "wheel_test": pl.String(),
}


def allocation_probability() -> pl.Expr:
    """Each wheel order's probability of the algo drawn: `allocation_prob`, else 1 / the
    number of algos among its trade date's wheel orders (equally likely among the arms drawn
    that day). Evaluate on wheel orders only."""
    arms = pl.col("algo").n_unique().over("trade_date")
    return pl.coalesce(pl.col("allocation_prob"), 1.0 / arms)


def wheel_orders(orders: pl.DataFrame) -> pl.DataFrame:
    """The wheel's orders with their probability (`allocation_probability`), `IPW` = arrival
    notional / probability, and whether the probability was recorded."""
    wheel = orders.filter(pl.col("allocation") == WHEEL)
    return wheel.with_columns(
        probability=allocation_probability(),
        recorded=pl.col("allocation_prob").is_not_null(),
    ).with_columns(**{IPW: pl.col(WEIGHT) / pl.col("probability")})


def orders_needed(n: int, diff: float, se: float, critical: float, power: float) -> int | None:
    """More wheel orders (in total over the algos, at the current probabilities) for the
    difference `diff` (standard error `se` at `n` orders) to be separated with `power` by the
    two-sided test of critical value `critical`: 0 when already separated; None when the
    difference is 0 (no sample separates equal algos) or has no standard error."""
    from scipy.stats import norm

    if not (math.isfinite(se) and se > 0 and math.isfinite(diff)):
        return None
    if abs(diff) > critical * se:
        return 0
    if diff == 0:
        return None
    total = n * ((critical + float(norm.ppf(power))) * se / abs(diff)) ** 2
    # Below 0 only for a power under 1/2, which the current orders already give.
    return max(math.ceil(total - n), 0)


def _empty() -> pl.DataFrame:
    return pl.DataFrame(schema={"algo": pl.String, **COLUMNS})


def _test_words(
    settings: AlgoSettings, n: int, clusters: int, best: str | None, unrecorded: int
) -> str:
    words = (
        f"Hajek inverse-propensity-weighted mean of the {n} wheel orders (weight: arrival "
        f"notional / probability of the algo drawn); cluster-robust CR2 t test by "
        f"{settings.cluster} ({clusters} clusters, t with the effective clusters), two-sided "
        f"{settings.ci_level:.0%}"
    )
    if best is not None:
        words += (
            f"; difference to the best, {best}, with orders needed for power "
            f"{settings.wheel_power:.0%} at the observed difference"
        )
    if unrecorded:
        words += (
            f"; {unrecorded} wheel order{'' if unrecorded == 1 else 's'} without a probability "
            "counted as equally likely among the date's wheel algos"
        )
    return words


def wheel_comparison(orders: pl.DataFrame, settings: AlgoSettings) -> pl.DataFrame:
    """One row per algo the wheel drew in the window (`algo` and `COLUMNS`): its wheel orders,
    its Hajek mean shortfall with the interval, its difference to the best wheel algo (the
    lowest mean among those with an interval; the best's own difference is 0, without an
    interval) with the interval, the wheel orders needed to separate it from the best and
    the test, in words. No rows without wheel orders."""
    wheel = wheel_orders(orders)
    if wheel.height == 0:
        return _empty()
    level, method = settings.ci_level, WHEEL_METHOD
    est = adjusted_means(
        wheel, METRIC, IPW, cell=None, venue="algo", cluster="cluster", level=level, method=method
    )
    table = est.table
    counts = wheel.group_by("algo").agg(wheel_orders=pl.len().cast(pl.UInt32))
    if table.height == 0:  # no wheel order has a known shortfall and a weight
        return counts.with_columns(
            pl.lit(None, t).alias(c) for c, t in COLUMNS.items() if c != "wheel_orders"
        ).select("algo", *COLUMNS)
    n = int(table["n"].sum())
    candidates = table.filter(pl.col("se").is_not_null() & pl.col("estimate").is_not_null())
    best = candidates.sort("estimate", "venue")["venue"][0] if candidates.height else None
    rows = []
    for algo, estimate in zip(table["venue"], table["estimate"], strict=True):
        row: dict[str, object] = {"algo": algo}
        if best is not None and estimate is not None:
            diff = estimate - table.filter(pl.col("venue") == best)["estimate"].item()
            if algo == best:
                row["wheel_difference_to_best_bps"] = 0.0
            else:
                contrast = pl.col(algo) - pl.col(best)
                se = influence_se(est.influence, contrast, method)
                t = influence_t(est.influence, contrast, level, method)
                low, high = diff - t * se, diff + t * se
                row |= {
                    "wheel_difference_to_best_bps": diff,
                    "wheel_difference_to_best_bps_ci_low": low if math.isfinite(low) else None,
                    "wheel_difference_to_best_bps_ci_high": high if math.isfinite(high) else None,
                    "wheel_orders_needed": orders_needed(n, diff, se, t, settings.wheel_power),
                }
        rows.append(row)
    differences = pl.DataFrame(
        rows,
        schema={"algo": pl.String, **{c: COLUMNS[c] for c in list(COLUMNS)[4:8]}},
    )
    unrecorded = int((~wheel["recorded"]).sum())
    means = table.select(
        pl.col("venue").alias("algo"),
        pl.col("estimate").alias(f"wheel_{METRIC}"),
        pl.col("ci_low").alias(f"wheel_{METRIC}_ci_low"),
        pl.col("ci_high").alias(f"wheel_{METRIC}_ci_high"),
    )
    return (
        counts.join(means, on="algo", how="left")
        .join(differences, on="algo", how="left")
        .with_columns(
            wheel_test=pl.lit(_test_words(settings, n, est.clusters, best, unrecorded)),
        )
        .select("algo", *COLUMNS)
        .sort("algo")
    )
