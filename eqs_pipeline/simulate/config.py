"""Configuration of the simulator: the run's size and seed, the venue table and the latent
coefficients that the truth file records.

Every number that shapes the synthetic market lives here with a documented default, so a
run is fully described by one `SimulationConfig` (and reproduced by it, byte for byte).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date
from typing import Literal, get_args

from eqs_pipeline.core.settings import CostModelSettings

from .algos import ALGO_COSTS, AlgoAssignment
from .costs import CostDesign

ALGOS: tuple[str, ...] = ("VWAP", "TWAP", "POV", "IS", "DARK")
URGENCIES: tuple[str, ...] = ("LOW", "MEDIUM", "HIGH")
# Child styles: how a child order meets liquidity. 0 passive (LIMIT, DAY -> ADD),
# 1 marketable (LIMIT or MARKET, IOC -> REMOVE), 2 midpoint (MIDPEG -> MID).
STYLES: tuple[str, ...] = ("passive", "marketable", "midpoint")
LIQUIDITY_OF_STYLE: tuple[str, ...] = ("ADD", "REMOVE", "MID")
# How a venue displays liquidity: "inverted" is a lit venue that charges makers and pays takers.
VenueKind = Literal["lit", "inverted", "dark"]
VENUE_KINDS: tuple[VenueKind, ...] = get_args(VenueKind)
# The desk's routing (`SimulationConfig.routing`): "default" (ten venues, every style) or
# "dark-lit" (`DARK_LIT_VENUES`).
Routing = Literal["default", "dark-lit"]
ROUTINGS: tuple[Routing, ...] = get_args(Routing)


@dataclass(frozen=True)
class Venue:
    """One venue's latent characteristics (the truth the pipeline should recover).

    Fees are per share in the instrument currency; negative means a rebate.
    fill_prob_*: probability that a child of that style routed here fills at all.
    wait_s_*: mean time a resting (passive / midpoint) child waits for its first fill.
    latency_ms: mean one-way latency sent_ts -> exec_ts for marketable children (log-normal).
    pi_frac_mean: mean price improvement of marketable (REMOVE) fills as a fraction of the
        half spread (0 = at the quote, 1 = at the mid); each fill draws f ~ Beta with this mean.
    kappa_bps: adverse selection. After each of our fills here the latent mid moves against
        us by kappa_bps (held `adverse_hold_s`, then decaying with `adverse_decay_s`).
    route_weight: relative preference of the default router within each style it supports.
    market_share: share of the consolidated tape printed on this venue.
    """

    mic: str
    name: str
    kind: VenueKind
    maker_fee: float
    taker_fee: float
    mid_fee: float
    styles: tuple[int, ...]
    fill_prob_passive: float
    fill_prob_marketable: float
    fill_prob_midpoint: float
    wait_s_passive: float
    wait_s_midpoint: float
    latency_ms: float
    pi_frac_mean: float
    kappa_bps: float
    route_weight: tuple[float, float, float]
    market_share: float
    note: str = ""

    def __post_init__(self) -> None:
        if self.kind not in VENUE_KINDS:
            raise ValueError(
                f"venue {self.mic}: kind must be one of {VENUE_KINDS}, not {self.kind!r}"
            )


DEFAULT_VENUES: tuple[Venue, ...] = (
    Venue("XNAS", "Nasdaq", "lit", -0.0029, 0.0030, 0.0, (0, 1), 0.55, 0.97, 0.0, 25, 0, 0.35, 0.02, 0.6, (3.0, 3.0, 0.0), 0.17),
    Venue("XNYS", "NYSE", "lit", -0.0020, 0.00275, 0.0, (0, 1), 0.50, 0.97, 0.0, 30, 0, 0.45, 0.01, 0.5, (2.5, 2.5, 0.0), 0.12),
    Venue("ARCX", "NYSE Arca", "lit", -0.0028, 0.0030, 0.0, (0, 1), 0.50, 0.96, 0.0, 30, 0, 0.40, 0.02, 0.7, (1.5, 1.5, 0.0), 0.09),
    Venue("BATS", "Cboe BZX", "lit", -0.0025, 0.0030, 0.0, (0, 1), 0.50, 0.96, 0.0, 30, 0, 0.40, 0.02, 0.8, (1.5, 1.5, 0.0), 0.07),
    Venue("EDGX", "Cboe EDGX", "lit", -0.0022, 0.0029, 0.0, (0, 1), 0.48, 0.96, 0.0, 35, 0, 0.40, 0.02, 0.7, (1.2, 1.2, 0.0), 0.06),
    Venue("EDGA", "Cboe EDGA (inverted)", "inverted", 0.0030, -0.0018, 0.0, (0, 1), 0.75, 0.93, 0.0, 12, 0, 0.40, 0.0, 1.5, (0.8, 0.5, 0.0), 0.02,
          "inverted: charges makers, pays takers; queue jumps fill passive orders fast but adversely"),
    Venue("IEXG", "IEX (speed bump)", "lit", 0.0, 0.0009, 0.0009, (0, 1, 2), 0.40, 0.92, 0.30, 40, 45, 0.75, 0.08, 0.2, (0.8, 0.6, 1.0), 0.03,
          "350 us speed bump (in latency); discretionary peg protects resting orders"),
    Venue("DKPA", "Broker ATS midpoint pool (fictional)", "dark", 0.0, 0.0, 0.0010, (2,), 0.0, 0.0, 0.40, 0.0, 35, 1.2, 1.0, 0.5, (0.0, 0.0, 3.0), 0.05,
          "midpoint crossing only"),
    Venue("DKPB", "Block crossing ATS (fictional)", "dark", 0.0, 0.0, 0.0015, (2,), 0.0, 0.0, 0.18, 0.0, 90, 2.0, 1.0, 0.3, (0.0, 0.0, 1.5), 0.02,
          "conditional block pool: rare, large midpoint fills, little information leakage"),
    Venue("ELPX", "ELP liquidity pool (fictional, toxic)", "dark", 0.0, -0.0005, 0.0005, (1, 2), 0.0, 0.95, 0.85, 0.0, 3, 0.9, 0.15, 10.0, (0.0, 0.8, 1.0), 0.03,
          "TOXIC: high fill rates, sub-penny improvement and a rebate hide heavy adverse selection"),
)  # fmt: skip


# `routing="dark-lit"`: the way most equity desks route. Midpoint pegs go to one dark pool,
# whose fills are all at the midpoint; marketable IOC orders go to four lit venues, which only
# take liquidity. LTA dominates every other venue (lowest all-in cost, highest fill rate); LTD
# is dominated by every other venue; the dark pool is cheaper than LTB and LTC but fills less.
DARK_LIT_VENUES: tuple[Venue, ...] = (
    Venue("LTA", "Lit A (inverted taker rebate, best price)", "lit", 0.0, -0.0010, 0.0, (1,), 0.0, 0.99, 0.0, 0, 0, 0.30, 0.40, 0.2, (0.0, 1.0, 0.0), 0.25,
          "dominant: rebate to takers, most price improvement, least adverse selection, fills most"),
    Venue("LTB", "Lit B", "lit", 0.0, 0.0030, 0.0, (1,), 0.0, 0.96, 0.0, 0, 0, 0.40, 0.02, 0.6, (0.0, 1.5, 0.0), 0.25),
    Venue("LTC", "Lit C", "lit", 0.0, 0.0029, 0.0, (1,), 0.0, 0.96, 0.0, 0, 0, 0.40, 0.02, 0.7, (0.0, 1.5, 0.0), 0.20),
    Venue("LTD", "Lit D (dominated)", "lit", 0.0, 0.0035, 0.0, (1,), 0.0, 0.70, 0.0, 0, 0, 0.60, 0.0, 8.0, (0.0, 1.0, 0.0), 0.10,
          "dominated: highest fee, no price improvement, heavy adverse selection, fills least of the lit"),
    Venue("DRKM", "Midpoint dark pool (fictional)", "dark", 0.0, 0.0, 0.0010, (2,), 0.0, 0.0, 0.55, 0.0, 40, 1.0, 1.0, 3.0, (0.0, 0.0, 1.0), 0.05,
          "midpoint crossing only: no spread paid, but fills under half its orders and leaks"),
)  # fmt: skip


@dataclass(frozen=True)
class ImpactParams:
    """Almgren et al. (2005) impact, the latent truth of the cost model.

    Temporary: while an order trades, the mid is displaced by
        D * eta * m * sigma * participation ** beta
    (m the broker x trader skill multiplier), ramping in with `ramp_s` and decaying with
    `temp_decay_s` after the order's end, so reversion after the end is observable.
    Permanent: each fill of q shares moves the mid by D * gamma * sigma * q / ADV for good.
    """

    eta: float = CostModelSettings().eta
    gamma: float = CostModelSettings().gamma
    beta: float = CostModelSettings().beta
    ramp_s: float = 60.0
    temp_decay_s: float = 300.0
    adverse_hold_s: float = 60.0
    adverse_decay_s: float = 240.0
    max_participation: float = 0.5


@dataclass(frozen=True)
class Degradation:
    """A venue that turns worse at a known moment (the monitoring's test bed, docs/SIMULATOR.md,
    "Injected degradation"): from `start_s` seconds after the open of trade date `start` (and
    on every later date), each of our fills on `venue` is priced `ticks` ticks worse for us
    (buys higher, sells lower) and moves the latent mid against us by `kappa_bps` (instead of
    the venue's own adverse selection): the venue fills worse and turns toxic. Fills before the
    onset, and every random draw, are those of the same run without the degradation.
    """

    venue: str
    start: date
    start_s: float = 0.0
    ticks: float = 1.0
    kappa_bps: float = 10.0

    def __post_init__(self) -> None:
        if self.start_s < 0 or self.ticks < 0 or self.kappa_bps < 0:
            raise ValueError("Degradation needs start_s, ticks and kappa_bps >= 0")

    def onset_s(self, d: date) -> float | None:
        """Seconds after the open from which the fills of trade date `d` are degraded (None:
        not on that date)."""
        if d < self.start:
            return None
        return self.start_s if d == self.start else 0.0


@dataclass(frozen=True)
class SimulationConfig:
    """One simulation run.

    days: number of trading days (weekdays from `start_date`).
    symbols: number of instruments.
    orders_per_day: parent orders per day (exact).
    seed: seed of the numpy Generator; the same config gives byte-identical output.
    quotes_per_fill / trades_per_fill: NBBO updates and background tape prints per fill of ours
        (each symbol-day also gets at least `min_quotes_per_symbol` / `min_trades_per_symbol`).
    child_median_shares: median child order size before the ADV scaling.
    max_children_per_order: cap on child orders per parent (before clean-up children).
    limit_order_share: share of parents that are LIMIT orders with a limit price.
    cancel_share: share of parents cancelled part way (under-filled or never filled).
    brokers / traders / accounts: sizes of the desk.
    routing: "default" (ten venues, every style) or "dark-lit" (`DARK_LIT_VENUES`: children
        are midpoint pegs to one dark pool or marketable IOC orders to four lit venues; no
        passive children). The venues default to the routing's own table.
    costs: None (the engine's costs emerge from the market) or a `CostDesign`: each order's
        implementation shortfall is drawn from a known distribution and its fills are priced
        to match (the cost model's test bed; `costs.py`).
    algos: None (one fixed algo mix, no allocation columns) or an `AlgoAssignment`: an order's
        algo depends on its size, or is drawn by an algo wheel, and the orders land
        `allocation` and `allocation_prob` (the algo comparison's test bed; `algos.py`).
    """

    days: int = 3
    symbols: int = 8
    orders_per_day: int = 200
    seed: int = 7
    start_date: date = date(2026, 11, 2)
    quotes_per_fill: float = 5.0
    trades_per_fill: float = 2.0
    min_quotes_per_symbol: int = 400
    min_trades_per_symbol: int = 150
    child_median_shares: float = 400.0
    max_children_per_order: int = 120
    limit_order_share: float = 0.10
    cancel_share: float = 0.04
    brokers: int = 5
    traders: int = 12
    accounts: int = 8
    timezone: str = "America/New_York"
    currency: str = "USD"
    impact: ImpactParams = field(default_factory=ImpactParams)
    venues: tuple[Venue, ...] = DEFAULT_VENUES
    routing: Routing = "default"
    costs: CostDesign | None = None
    algos: AlgoAssignment | None = None
    degradation: Degradation | None = None

    def styles(self) -> tuple[int, ...]:
        """The child styles this routing sends (indices of `STYLES`)."""
        return (1, 2) if self.routing == "dark-lit" else (0, 1, 2)

    def __post_init__(self) -> None:
        if self.routing not in ROUTINGS:
            raise ValueError(f"routing must be one of {ROUTINGS}, not {self.routing!r}")
        if self.routing == "dark-lit" and self.venues == DEFAULT_VENUES:
            object.__setattr__(self, "venues", DARK_LIT_VENUES)
        if self.days < 1 or self.symbols < 1 or self.orders_per_day < 0:
            raise ValueError("SimulationConfig needs days >= 1, symbols >= 1, orders_per_day >= 0")
        if (
            self.impact.ramp_s < 40
            or self.impact.temp_decay_s < 40
            or self.impact.adverse_decay_s < 40
        ):
            raise ValueError(
                "impact time constants must be >= 40 s (exponential kernels overflow below)"
            )
        if len({v.mic for v in self.venues}) != len(self.venues):
            raise ValueError("venue MICs must be unique")
        if self.degradation is not None and self.costs is not None:
            raise ValueError("a degradation cannot be combined with designed costs")
        if self.degradation is not None and self.degradation.venue not in {
            v.mic for v in self.venues
        }:
            raise ValueError(
                f"degradation: no venue {self.degradation.venue!r} in the routing's venues"
            )
        for style in self.styles():
            if not any(v.route_weight[style] > 0 and style in v.styles for v in self.venues):
                raise ValueError(f"no venue accepts {STYLES[style]} children")


def cost_test_bed(days: int, orders_per_day: int, seed: int, symbols: int = 60) -> SimulationConfig:
    """The designed-cost desk the cost model is tested and benchmarked on (docs/SIMULATOR.md,
    "Designed costs"): no cancellations and, since the designed shortfall does not depend on
    how an order was worked, at most two children per order and a thin background market,
    which keep it quick to simulate and to score."""
    return SimulationConfig(
        days=days,
        symbols=symbols,
        orders_per_day=orders_per_day,
        seed=seed,
        cancel_share=0.0,
        max_children_per_order=2,
        quotes_per_fill=2.0,
        trades_per_fill=1.0,
        costs=CostDesign(),
    )


def algo_test_bed(
    days: int,
    orders_per_day: int,
    seed: int,
    symbols: int = 60,
    wheel: bool = False,
    wheel_share: float = 0.5,
) -> SimulationConfig:
    """The desk the algo comparison is tested on (docs/SIMULATOR.md, "The algo scenario"): the
    cost test bed's quick market with the algo design's costs (`algos.ALGO_COSTS`), each
    order's algo chosen by its size, and with `wheel` a share `wheel_share` of the orders
    allocated by the algo wheel instead."""
    return replace(
        cost_test_bed(days, orders_per_day, seed, symbols),
        costs=ALGO_COSTS,
        algos=AlgoAssignment(wheel_share=wheel_share if wheel else 0.0),
    )
