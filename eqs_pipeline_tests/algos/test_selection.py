"""Per-order algo selection through the cost model (`algos.selection`) on the designed desk,
whose true cost under every algo is known (`choice_desk.designed_costs`): DARK's designed
spread and impact coefficients are the lowest, so it is the cheapest algo for every order."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from eqs_pipeline.algos.frames import WEIGHT
from eqs_pipeline.algos.selection import (
    NO_MODEL,
    SELECTION_COLUMNS,
    Pricer,
    Selection,
    algo_selection,
    candidate_support,
)
from eqs_pipeline.algos.settings import AlgoSettings
from eqs_pipeline.costmodel.features import arrival_features
from eqs_pipeline.simulate.config import ALGOS
from eqs_pipeline.tables.algo_choice import ALGO_SELECTION
from eqs_pipeline.tables.schemas import schema
from eqs_pipeline_tests.algos.choice_desk import ChoiceDesk, choice_desk

KEY = ["trade_date", "order_id"]


@pytest.fixture(scope="module")
def desk() -> ChoiceDesk:
    return choice_desk()


def _select(desk: ChoiceDesk, orders: pl.DataFrame | None = None) -> Selection:
    return algo_selection(
        desk.orders if orders is None else orders,
        desk.instruments,
        desk.artifact,
        desk.support,
        desk.settings,
    )


def _true_cost(column: str) -> pl.Expr:
    """The designed expected cost of the order under the algo named in `column`."""
    return pl.coalesce(
        [pl.when(pl.col(column) == a).then(pl.col(f"true_cost_{a}_bps")) for a in ALGOS]
    )


def test_recommendations_capture_the_designed_saving(desk: ChoiceDesk) -> None:
    """Where DARK (the designed cheapest) is a candidate, following the recommendations saves
    most of what moving every order to DARK truly would, most switched orders truly save, and
    large orders (where the designed gap is widest) are sent to DARK."""
    frame = (
        _select(desk)
        .frame.join(desk.truth, on=KEY)
        .with_columns(true_own=_true_cost("algo"), true_recommended=_true_cost("recommended_algo"))
    )
    dark = frame.filter(pl.col("candidates").str.contains("DARK"))
    assert dark.height > 1000
    w = pl.col(WEIGHT)
    captured = dark.select(
        ((pl.col("true_own") - pl.col("true_recommended")) * w).sum()
        / ((pl.col("true_own") - pl.col("true_cost_DARK_bps")) * w).sum()
    ).item()
    assert captured > 0.6
    switched = frame.filter(pl.col("recommended_algo") != pl.col("algo"))
    truly_cheaper = switched.select((pl.col("true_recommended") < pl.col("true_own")).mean())
    assert truly_cheaper.item() > 0.75
    large = dark.filter(pl.col("size_bucket") == "large")
    assert large.select((pl.col("recommended_algo") == "DARK").mean()).item() > 0.75
    # The model's expected saving is what it says: the difference of its two prices.
    priced = frame.filter(pl.col("expected_saving_bps").is_not_null())
    assert (priced["expected_saving_bps"] >= 0).all()
    assert (
        priced.filter(pl.col("recommended_algo") != pl.col("algo"))["expected_saving_bps"]
        >= desk.settings.min_saving_bps
    ).all()


def test_frame_validates_and_keeps_the_orders(desk: ChoiceDesk) -> None:
    selection = _select(desk)
    assert selection.frame.columns == list(SELECTION_COLUMNS)
    assert selection.frame.select(KEY).equals(desk.orders.select(KEY))
    schema(ALGO_SELECTION).validate(selection.frame, lazy=True)
    assert selection.difficulty_bps is not None
    assert selection.difficulty_bps.len() == desk.orders.height
    assert selection.frame["recommended_urgency"].drop_nulls().len() > 0


def test_candidates_are_limited_by_support(desk: ChoiceDesk) -> None:
    """An algo without enough training orders of a size bucket is never a candidate there, so
    never recommended; a size bucket with no supported algo gets no recommendation, and says
    so."""
    no_large_dark = desk.support.filter(
        ~((pl.col("algo") == "DARK") & (pl.col("size_bucket") == "large"))
    )
    frame = algo_selection(
        desk.orders, desk.instruments, desk.artifact, no_large_dark, desk.settings
    ).frame
    large = frame.filter(pl.col("size_bucket") == "large")
    assert large.height > 50
    assert not large["candidates"].str.contains("DARK").any()
    # A DARK order may keep its algo; no other order is sent to DARK.
    switched = large.filter(pl.col("recommended_algo") != pl.col("algo"))
    assert switched.height > 50
    assert (switched["recommended_algo"] != "DARK").all()
    elsewhere = frame.filter(
        (pl.col("size_bucket") != "large") & (pl.col("recommended_algo") != pl.col("algo"))
    )
    assert (elsewhere["recommended_algo"] == "DARK").any()

    only_small = desk.support.filter(pl.col("size_bucket") == "small")
    frame = algo_selection(
        desk.orders, desk.instruments, desk.artifact, only_small, desk.settings
    ).frame
    large = frame.filter(pl.col("size_bucket") == "large")
    assert large["recommended_algo"].is_null().all()
    assert large["expected_saving_bps"].is_null().all()
    assert (large["candidate_count"] == 0).all()
    assert large["note"].str.starts_with("no candidate").all()
    assert large["expected_cost_bps"].is_not_null().all()  # its own algo is still priced
    assert frame.filter(pl.col("size_bucket") == "small")["recommended_algo"].is_not_null().all()


def test_min_support_orders_sets_the_bar(desk: ChoiceDesk) -> None:
    strict = AlgoSettings(min_support_orders=10_000)
    frame = algo_selection(desk.orders, desk.instruments, desk.artifact, desk.support, strict).frame
    assert frame["recommended_algo"].is_null().all()
    assert frame["note"].str.contains("at least 10000 orders").all()


def test_an_order_keeps_its_algo_below_the_minimum_saving(desk: ChoiceDesk) -> None:
    frame = algo_selection(
        desk.orders,
        desk.instruments,
        desk.artifact,
        desk.support,
        AlgoSettings(min_saving_bps=1e6),
    ).frame
    assert frame.filter(pl.col("recommended_algo") != pl.col("algo")).height == 0
    kept = frame.filter(pl.col("recommended_algo").is_not_null())
    assert kept.height > 2000
    assert (kept["expected_saving_bps"] == 0).all()
    assert (
        kept.select(pl.col("recommended_expected_cost_bps") == pl.col("expected_cost_bps"))
        .to_series()
        .all()
    )
    assert kept["note"].str.starts_with("keeps its algo").any()


def test_without_a_model_every_order_says_so(desk: ChoiceDesk) -> None:
    selection = algo_selection(desk.orders, desk.instruments, None, desk.support, desk.settings)
    frame = selection.frame
    assert selection.difficulty_bps is None
    assert (frame["note"] == NO_MODEL).all()
    for column in ("expected_cost_bps", "recommended_algo", "expected_saving_bps"):
        assert frame[column].is_null().all()
    assert (frame["algo"] == desk.orders["algo"]).all()
    schema(ALGO_SELECTION).validate(frame, lazy=True)


def test_an_order_the_model_cannot_price_says_why(desk: ChoiceDesk) -> None:
    orders = desk.orders.with_columns(
        arrival_mid=pl.when(pl.int_range(pl.len()) < 5).then(None).otherwise(pl.col("arrival_mid"))
    )
    selection = _select(desk, orders)
    first = selection.frame.head(5)
    assert first["note"].str.starts_with("no arrival quote").all()
    assert first["expected_cost_bps"].is_null().all()
    assert selection.difficulty_bps is not None
    assert selection.difficulty_bps.head(5).is_null().all()
    assert selection.difficulty_bps.tail(100).is_not_null().all()


def test_difficulty_does_not_depend_on_the_algo_the_order_got(desk: ChoiceDesk) -> None:
    """A copy of an order given another algo is exactly as difficult: difficulty prices the
    order under every algo of the desk's mix, whichever it got."""
    head = desk.orders.head(40)
    rotate = {a: ALGOS[(i + 1) % len(ALGOS)] for i, a in enumerate(ALGOS)}
    copies = head.with_columns(
        pl.col("order_id") + "-copy",
        pl.col("algo").replace_strict(rotate),
        target_participation=pl.lit(None, pl.Float64),
    )
    selection = _select(desk, pl.concat([desk.orders, copies]))
    assert selection.difficulty_bps is not None
    n = desk.orders.height
    original = selection.difficulty_bps.head(40)
    copied = selection.difficulty_bps.slice(n, 40)
    assert (original - copied).abs().max() < 1e-9
    # Its own expected cost does depend on it.
    costs = selection.frame["expected_cost_bps"]
    assert (costs.head(40) - costs.slice(n, 40)).abs().max() > 0.01


def test_difficulty_of_a_one_algo_desk_is_the_expected_cost(desk: ChoiceDesk) -> None:
    """With every order on VWAP (no target), the desk's mix is VWAP alone and an order's
    difficulty is its expected cost with its algo."""
    orders = desk.orders.with_columns(
        algo=pl.lit("VWAP"), target_participation=pl.lit(None, pl.Float64)
    )
    selection = _select(desk, orders)
    assert selection.difficulty_bps is not None
    gap = selection.difficulty_bps - selection.frame["expected_cost_bps"]
    assert gap.abs().max() < 1e-9


def test_support_buckets_as_the_window_frame(desk: ChoiceDesk) -> None:
    support = candidate_support(desk.order_quality, desk.settings)
    counts = desk.orders.group_by(
        "algo", "size_bucket", pl.col("urgency_level").alias("urgency")
    ).agg(pl.len().cast(pl.UInt32).alias("n"))
    joined = support.join(counts, on=["algo", "size_bucket", "urgency"], how="full")
    assert joined.filter(pl.col("orders") != pl.col("n")).height == 0
    assert joined["orders"].null_count() == 0 and joined["n"].null_count() == 0
    pov = support.filter(pl.col("algo") == "POV")
    assert pov["typical_target_participation"].is_not_null().all()
    assert support.filter(pl.col("algo") == "VWAP")["typical_target_participation"].is_null().all()


def test_base_difficulty_does_not_depend_on_the_instructions(desk: ChoiceDesk) -> None:
    """A copy of an order with another urgency and no limit has the same base difficulty
    (the parameter curves bucket by it), though not the same difficulty."""
    head = desk.orders.head(40)
    flip = {"LOW": "HIGH", "MEDIUM": "LOW", "HIGH": "MEDIUM"}
    copies = head.with_columns(
        pl.col("order_id") + "-copy",
        urgency=pl.col("urgency").replace_strict(flip),
        urgency_level=pl.col("urgency_level").replace_strict(flip),
        order_type=pl.lit("LIMIT"),
        limit_price=pl.col("arrival_mid") * (1 + 0.01 * pl.col("side_sign")),
    )
    selection = _select(desk, pl.concat([desk.orders, copies]))
    assert selection.base_difficulty_bps is not None and selection.difficulty_bps is not None
    n = desk.orders.height
    base = selection.base_difficulty_bps
    assert (base.head(40) - base.slice(n, 40)).abs().max() < 1e-9
    own = selection.difficulty_bps
    assert (own.head(40) - own.slice(n, 40)).abs().max() > 0.1


def test_pricer_agrees_with_the_artifacts_predict(desk: ChoiceDesk) -> None:
    """The selection's pricer rewrites the design matrix's instruction columns instead of
    building it again: its prices are `CostModelArtifact.predict`'s on the changed features."""
    orders = desk.orders.with_columns(
        arrival_mid=pl.when(pl.int_range(pl.len()) < 3).then(None).otherwise(pl.col("arrival_mid"))
    )
    features = arrival_features(orders, desk.instruments)
    pricer = Pricer(desk.artifact, features)

    def predicted(frame: pl.DataFrame) -> np.ndarray:
        return desk.artifact.predict(frame).frame["expected_cost_bps"].to_numpy()

    target = np.where(np.arange(orders.height) % 3 == 0, np.nan, 0.12)
    changed = features.with_columns(
        algo=pl.lit("POV"),
        target_participation=pl.Series(np.nan_to_num(target)),
        target_participation_known=pl.Series((~np.isnan(target)).astype(float)),
    )
    cases = [
        (pricer.price(), predicted(features)),
        (pricer.price(algo="POV", target=target), predicted(changed)),
        (pricer.price(algo="NOT_AN_ALGO"), predicted(features.with_columns(algo=pl.lit("X")))),
        (
            pricer.price(algo="POV", target=target, urgency="LOW", market=True),
            predicted(
                changed.with_columns(
                    urgency=pl.lit("LOW"),
                    order_type=pl.lit("MARKET"),
                    limit_distance_sigma=pl.lit(0.0),
                )
            ),
        ),
        (
            pricer.price(urgency=None),
            predicted(features.with_columns(urgency=pl.lit(None, pl.String))),
        ),
    ]
    for mine, theirs in cases:
        assert np.isnan(mine[:3]).all() and np.isnan(theirs[:3]).all()
        np.testing.assert_allclose(mine[3:], theirs[3:], rtol=1e-5, atol=1e-4)
    assert np.abs(cases[0][0][3:] - cases[1][0][3:]).max() > 0.1  # the change matters
