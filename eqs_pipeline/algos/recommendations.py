"""The recommended algo mix (`algo.algo_recommendations`): per difficulty bucket, the desk's
current algo mix, the mix if every order took the algo the selection recommends for it, what
that is expected to save, and how far the realized costs of the window back it.

Two figures, two sources:

- The expected saving is the cost model's (`selection`): the notional-weighted mean of the
  orders' expected savings (an order without a recommendation keeps its algo and saves 0), and
  in currency per month that mean times the bucket's arrival notional per trade date, times
  `settings.trading_days_per_month`. It carries no interval: the model's error on an algo the
  order did not get is not something the window's orders can measure.
- The evidence is the realized shortfall of the window's orders, compared the scorecard's way
  (`stats.strata`, as the scorecard standardizes): within the bucket and each size bucket (the
  strata), every algo's shortfall is mix-adjusted for `settings.controls`, and the saving is
  sum over strata s of pi_s sum over algos a of (current_share_sa - recommended_share_sa)
  x adjusted_shortfall_sa, pi_s the stratum's share of the bucket's notional: what moving the
  stratum's notional from the current to the recommended mix would have saved on these orders,
  had the algos' costs been what they were for comparable orders. Its interval is
  cluster-robust (`settings.cluster`, `settings.ci_method`), from the cluster influences
  summed over the strata, and covers the sampling of the window's orders: an algo that got few
  comparable orders widens it. It does not cover what the controls leave out (why a trader
  chose an algo beyond size, volatility, spread, time and urgency), and it compares the mixes
  at the stratum level, so the per-order targeting the model does within a stratum is not in
  it. `evidence_p_value` is the two-sided p-value of "the saving is 0".

One row per difficulty bucket (and `all`, the desk) x algo, and one row per bucket with a null
`algo` holding the bucket's totals (as a GROUP BY ROLLUP would): the algo rows' shares sum to 1
per bucket and their monthly savings to the bucket's.
"""

from __future__ import annotations

import math
from datetime import date

import polars as pl

from eqs_pipeline.algos.frames import WEIGHT
from eqs_pipeline.algos.settings import DIFFICULTY_BUCKETS, AlgoSettings
from eqs_pipeline.core.buckets import UNKNOWN
from eqs_pipeline.core.contract import ORDER_KEY
from eqs_pipeline.stats import (
    effective_df,
    influence_se,
    influence_t,
    stratum_frames,
    stratum_influence,
    stratum_label,
    within_stratum,
)

VALUE = "implementation_shortfall_bps"
ALL = "all"
BUCKET_ORDER: tuple[str, ...] = (*DIFFICULTY_BUCKETS, UNKNOWN, ALL)
_CONTROL_WORDS = {
    "volatility_bucket": "volatility",
    "spread_bucket": "arrival spread",
    "time_bucket": "time of day",
    "urgency": "urgency",
}
# `algo_recommendations`'s columns, in the table's order (tables/algo_choice.py describes each).
RECOMMENDATION_COLUMNS: tuple[str, ...] = (
    "window_start",
    "window_end",
    "trade_days",
    "difficulty_bucket",
    "algo",
    "orders",
    "notional",
    "current_share",
    "recommended_orders",
    "recommended_share",
    "switched_orders",
    "current_mix",
    "recommended_mix",
    "expected_saving_bps",
    "expected_saving_per_month",
    "evidence_orders",
    "evidence_coverage",
    "evidence_saving_bps",
    "evidence_ci_low",
    "evidence_ci_high",
    "evidence_p_value",
    "test",
    "model_version",
    "note",
)


def _test_words(settings: AlgoSettings) -> str:
    controls = ", ".join(_CONTROL_WORDS[c] for c in settings.controls) or "nothing else"
    method = (
        "CR2, t with the effective number of clusters"
        if settings.ci_method == "conditional"
        else "CR1, t(clusters - 1)"
    )
    return (
        "realized implementation shortfall of the window's orders, mix-adjusted per size bucket "
        f"for {controls}: current mix minus recommended mix; cluster-robust by "
        f"{settings.cluster} ({method}), {settings.ci_level:.0%} interval; two-sided t test "
        "of a zero saving"
    )


def _mix_text(shares: pl.DataFrame, column: str) -> str | None:
    """ "VWAP 40%, IS 35%, DARK 25%": the algos with a share, largest first."""
    rows = shares.filter(pl.col(column) > 0).sort(column, "algo", descending=[True, False])
    if rows.height == 0:
        return None
    return ", ".join(
        f"{a} {round(s * 100):d}%" if s >= 0.005 else f"{a} <1%"
        for a, s in rows.select("algo", column).iter_rows()
    )


def _evidence(
    frame: pl.DataFrame, strata: list[str], settings: AlgoSettings
) -> tuple[dict[str, float | int | None], str | None]:
    """The realized saving of the recommended mix over the current one (module docstring) of
    the bucket's orders `frame` (with `target_algo`), its interval and p-value, and why it is
    missing where it is."""
    rows = frame.filter(pl.col(VALUE).is_not_null() & pl.col(VALUE).is_not_nan())
    out: dict[str, float | int | None] = {
        "evidence_orders": rows.height,
        "evidence_coverage": None,
        "evidence_saving_bps": None,
        "evidence_ci_low": None,
        "evidence_ci_high": None,
        "evidence_p_value": None,
    }
    total = float(rows[WEIGHT].sum()) if rows.height else 0.0
    if total <= 0:
        return out, "no evidence: no order of the bucket has a realized shortfall"
    covered, weighted, influences, missing = 0.0, 0.0, [], []
    for key, stratum in stratum_frames(rows, strata):
        w = float(stratum[WEIGHT].sum())
        current = stratum.group_by("algo").agg(pl.col(WEIGHT).sum() / w)
        proposed = stratum.group_by(pl.col("target_algo").alias("algo")).agg(
            pl.col(WEIGHT).sum() / w
        )
        shift = current.join(proposed, on="algo", how="full", coalesce=True).select(
            "algo", pl.col(WEIGHT).fill_null(0.0) - pl.col(f"{WEIGHT}_right").fill_null(0.0)
        )
        diff = {a: d for a, d in shift.iter_rows() if abs(d) > 1e-12}
        if not diff:  # the stratum keeps its mix: it saves 0, for certain
            covered += w
            continue
        est = within_stratum(
            stratum,
            [VALUE],
            WEIGHT,
            venue="algo",
            cluster="cluster",
            controls="conditions" if settings.controls else None,
            level=settings.ci_level,
            method=settings.ci_method,
        )[VALUE]
        theta = dict(est.table.select("venue", "estimate").iter_rows())
        absent = [a for a in diff if theta.get(a) is None]
        if absent:
            missing += [f"{a} ({stratum_label(key)})" for a in absent]
            continue
        covered += w
        weighted += w * sum(d * theta[a] for a, d in diff.items())
        influences.append((w, diff, est.influence))
    out["evidence_coverage"] = covered / total
    if covered <= 0:
        return out, (
            "no evidence: the window holds no orders (or too few to estimate) of "
            + ", ".join(sorted(missing))
            + " comparable to those it would take"
        )
    share = f"{covered / total:.1%}" if covered / total < 0.9995 else "over 99.9%"
    left_out = (
        f"the evidence covers {share} of the bucket's notional: the window holds "
        "no orders (or too few to estimate) of " + ", ".join(sorted(missing)) + " comparable "
        "to those it would take"
        if missing
        else None
    )
    estimate = weighted / covered
    out["evidence_saving_bps"] = estimate
    if not influences:
        return out, left_out or "the recommended mix is the current mix"
    influence = stratum_influence([(w / covered, diff, infl) for w, diff, infl in influences])
    se = influence_se(influence, pl.col("d"), settings.ci_method)
    crit = influence_t(influence, pl.col("d"), settings.ci_level, settings.ci_method)
    if not (math.isfinite(se) and math.isfinite(crit)):
        return out, "; ".join(
            n for n in ("no interval: an algo's orders come from too few clusters", left_out) if n
        )
    out["evidence_ci_low"] = estimate - crit * se
    out["evidence_ci_high"] = estimate + crit * se
    out["evidence_p_value"] = _p_value(estimate, se, influence, settings)
    return out, left_out


def _p_value(estimate: float, se: float, influence: pl.DataFrame, settings: AlgoSettings) -> float:
    """Two-sided p-value of a zero saving, with the intervals' degrees of freedom."""
    from scipy.stats import t

    g = influence.height
    if settings.ci_method == "conditional":
        df = float(effective_df(influence["d"].to_numpy()[:, None], g)[0])
    else:
        df = float(max(g - 1, 1))
    if se == 0:
        return 0.0 if estimate != 0 else 1.0
    return float(2 * t.sf(abs(estimate / se), df))


def _bucket_rows(
    frame: pl.DataFrame,
    name: str,
    strata: list[str],
    window: tuple[date, date, int],
    settings: AlgoSettings,
) -> pl.DataFrame:
    """The rows of one difficulty bucket (or the desk): one per algo, then its totals."""
    days = window[2]
    per_month = settings.trading_days_per_month / days / 1e4
    total = float(frame[WEIGHT].sum())
    recommended = pl.col("recommended_algo").is_not_null()
    switched = recommended & (pl.col("recommended_algo") != pl.col("algo"))
    current = frame.group_by("algo").agg(
        orders=pl.len().cast(pl.UInt32),
        notional=pl.col(WEIGHT).sum(),
        switched_orders=switched.sum().cast(pl.UInt32),
        weighted_saving=(pl.col(WEIGHT) * pl.col("saving")).sum(),
    )
    proposed = frame.group_by(pl.col("target_algo").alias("algo")).agg(
        recommended_orders=pl.len().cast(pl.UInt32),
        recommended_notional=pl.col(WEIGHT).sum(),
    )
    any_recommendation = frame.select(recommended.any()).item()
    algos = (
        current.join(proposed, on="algo", how="full", coalesce=True)
        .with_columns(
            pl.col("orders", "switched_orders", "recommended_orders").fill_null(0),
            pl.col("notional", "weighted_saving", "recommended_notional").fill_null(0.0),
        )
        .with_columns(
            current_share=pl.col("notional") / total,
            recommended_share=pl.col("recommended_notional") / total,
        )
        .sort("algo")
    )
    evidence, evidence_note = (
        _evidence(frame, strata, settings) if any_recommendation else ({}, None)
    )
    model = frame["model_version"].drop_nulls().unique().sort()
    if any_recommendation:
        note = evidence_note
    elif model.len() == 0:
        note = "no recommendation: no cost model in service"
    else:
        note = "no recommendation: the cost model compared none of the bucket's orders"
    saving_sum = float(algos["weighted_saving"].sum())
    bucket_row = {
        "difficulty_bucket": name,
        "algo": None,
        "orders": frame.height,
        "notional": total,
        "current_share": None,
        "recommended_orders": int(frame.select(recommended.sum()).item()),
        "recommended_share": None,
        "switched_orders": int(algos["switched_orders"].sum()),
        "current_mix": _mix_text(algos, "current_share"),
        "recommended_mix": _mix_text(algos, "recommended_share") if any_recommendation else None,
        "expected_saving_bps": saving_sum / total if any_recommendation else None,
        "expected_saving_per_month": saving_sum * per_month if any_recommendation else None,
        **evidence,
        "test": _test_words(settings) if any_recommendation else None,
        "model_version": model[0] if model.len() == 1 else None,
        "note": note,
    }
    with_recs = pl.lit(any_recommendation)
    algo_rows = algos.select(
        difficulty_bucket=pl.lit(name),
        algo="algo",
        orders="orders",
        notional="notional",
        current_share="current_share",
        recommended_orders=pl.when(with_recs).then(pl.col("recommended_orders")),
        recommended_share=pl.when(with_recs).then(pl.col("recommended_share")),
        switched_orders="switched_orders",
        expected_saving_bps=pl.when(with_recs & (pl.col("notional") > 0)).then(
            pl.col("weighted_saving") / pl.col("notional")
        ),
        expected_saving_per_month=pl.when(with_recs).then(pl.col("weighted_saving") * per_month),
        model_version=pl.lit(bucket_row["model_version"], pl.String),
        note=pl.when(pl.col("orders") == 0).then(
            pl.format(
                "no order of the window uses it: recommended for {} orders", "recommended_orders"
            )
        ),
    )
    return pl.concat(
        [pl.DataFrame([bucket_row], schema_overrides=_SCHEMA, strict=False), algo_rows],
        how="diagonal_relaxed",
    )


_SCHEMA: dict[str, pl.DataType] = {
    "difficulty_bucket": pl.String(),
    "algo": pl.String(),
    "orders": pl.UInt32(),
    "notional": pl.Float64(),
    "current_share": pl.Float64(),
    "recommended_orders": pl.UInt32(),
    "recommended_share": pl.Float64(),
    "switched_orders": pl.UInt32(),
    "current_mix": pl.String(),
    "recommended_mix": pl.String(),
    "expected_saving_bps": pl.Float64(),
    "expected_saving_per_month": pl.Float64(),
    "evidence_orders": pl.UInt32(),
    "evidence_coverage": pl.Float64(),
    "evidence_saving_bps": pl.Float64(),
    "evidence_ci_low": pl.Float64(),
    "evidence_ci_high": pl.Float64(),
    "evidence_p_value": pl.Float64(),
    "test": pl.String(),
    "model_version": pl.String(),
    "note": pl.String(),
}


def algo_recommendations(
    orders: pl.DataFrame,
    selection: pl.DataFrame,
    window: tuple[date, date, int],
    settings: AlgoSettings,
) -> pl.DataFrame:
    """The recommended mix of the window's orders (`frames.algo_orders` rows with
    `with_difficulty` applied) from their selection (`algo.algo_selection` rows); `window` is
    (first date, last date, number of trade dates). The orders with an arrival notional enter;
    see the module docstring for the rows and the figures."""
    chosen = selection.select(
        *ORDER_KEY, "recommended_algo", "expected_saving_bps", "model_version"
    )
    frame = (
        orders.filter(pl.col(WEIGHT) > 0)
        .select(
            *ORDER_KEY,
            pl.col("algo").cast(pl.String),
            pl.col("difficulty_bucket").cast(pl.String),
            pl.col("size_bucket").cast(pl.String),
            "cluster",
            "conditions",
            WEIGHT,
            VALUE,
        )
        .join(chosen, on=list(ORDER_KEY), how="left")
        .with_columns(
            target_algo=pl.coalesce("recommended_algo", "algo"),
            saving=pl.col("expected_saving_bps").fill_null(0.0),
        )
    )
    parts = []
    buckets = [b for b in BUCKET_ORDER[:-1] if b in set(frame["difficulty_bucket"].to_list())]
    for name in buckets:
        part = frame.filter(pl.col("difficulty_bucket") == name)
        parts.append(_bucket_rows(part, name, ["size_bucket"], window, settings))
    if frame.height:
        parts.append(
            _bucket_rows(frame, ALL, ["difficulty_bucket", "size_bucket"], window, settings)
        )
    start, end, days = window
    out = pl.concat([pl.DataFrame(schema=_SCHEMA), *parts], how="diagonal_relaxed")
    order = pl.col("difficulty_bucket").replace_strict(
        {b: i for i, b in enumerate(BUCKET_ORDER)}, return_dtype=pl.Int32
    )
    return (
        out.with_columns(
            window_start=pl.lit(start, pl.Date),
            window_end=pl.lit(end, pl.Date),
            trade_days=pl.lit(days, pl.Int32),
            evidence_orders=pl.col("evidence_orders").cast(pl.UInt32),
        )
        .sort(order, pl.col("algo").is_not_null(), "algo")
        .select(RECOMMENDATION_COLUMNS)
    )
