"""Algo assignment and the algo test bed's cost design (docs/SIMULATOR.md, "The algo scenario").

In the default mode each order's algo is drawn from one fixed mix, whatever the order. A desk's
traders do not choose that way: they send large orders to the algos they trust with size, so an
algo's raw average cost says as much about the orders it got as about the algo. With
`SimulationConfig.algos = AlgoAssignment(...)`:

- a discretionary order gets its algo with probabilities that depend on its size (order_qty /
  ADV, in three buckets): the choice is confounded with the order's difficulty, as on a real
  desk, yet every algo keeps a share of every bucket, so that a cost model has support
  everywhere;
- a share `wheel_share` of the orders goes to an algo wheel instead: the algo is drawn among a
  few comparable algos with fixed probabilities that do not depend on the order. Those orders
  land `allocation = "wheel"` and `allocation_prob`, the probability of the algo drawn; the
  others land `allocation = "discretionary"` and no probability.

`ALGO_COSTS` is the designed cost (`costs.py`) under which the algos differ in known ways:
every other algo dominates TWAP (it pays the most spread, the most impact and the highest fixed
cost, so it costs more than any other algo for every order), DARK (little spread paid, much
impact) is the cheapest algo for small orders and IS (much spread paid, little impact) for
large ones. The truth records every order's true expected cost under every algo and every
urgency, so a test can check an algo scorecard, a per-order algo choice or a wheel evaluation
against it.

Tuples by algo are in the order of `config.ALGOS` (VWAP, TWAP, POV, IS, DARK), as in `costs.py`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .costs import CostDesign

SIZE_BUCKETS: tuple[str, str, str] = ("small", "medium", "large")


@dataclass(frozen=True)
class AlgoAssignment:
    """How orders get their algo (see the module docstring).

    size_edges: the order_qty / ADV that ends the small bucket and starts the large one.
    probs: per size bucket (small, medium, large), the probability of each algo for a
        discretionary order.
    wheel_share: the share of orders allocated by the wheel, in [0, 1].
    wheel_probs: the wheel's probability of each algo (0 for the algos it never draws).
    """

    size_edges: tuple[float, float] = (0.002, 0.01)
    probs: tuple[tuple[float, ...], ...] = (
        (0.25, 0.15, 0.15, 0.10, 0.35),
        (0.30, 0.15, 0.15, 0.25, 0.15),
        (0.10, 0.10, 0.10, 0.60, 0.10),
    )
    wheel_share: float = 0.0
    wheel_probs: tuple[float, ...] = (0.4, 0.0, 0.0, 0.3, 0.3)

    def __post_init__(self) -> None:
        low, high = self.size_edges
        if not 0.0 < low < high:
            raise ValueError("AlgoAssignment.size_edges must be increasing and positive")
        if len(self.probs) != len(SIZE_BUCKETS):
            raise ValueError("AlgoAssignment.probs needs one row per size bucket (3)")
        for row in (*self.probs, self.wheel_probs):
            if len(row) != 5 or min(row) < 0.0 or abs(sum(row) - 1.0) > 1e-9:
                raise ValueError(
                    "AlgoAssignment.probs and wheel_probs need one probability per algo (5), "
                    "summing to 1"
                )
        if not 0.0 <= self.wheel_share <= 1.0:
            raise ValueError("AlgoAssignment.wheel_share must be in [0, 1]")


@dataclass(frozen=True)
class Allocation:
    """Per order (aligned arrays): the algo (index into `config.ALGOS`), whether the wheel
    allocated it, and the probability of the algo the wheel drew (NaN for the others)."""

    algo: np.ndarray
    wheel: np.ndarray
    prob: np.ndarray


def size_bucket(design: AlgoAssignment, size_adv: np.ndarray) -> np.ndarray:
    """Each order's size bucket (index into `SIZE_BUCKETS`): small below the first edge, large
    from the second on."""
    return np.searchsorted(np.asarray(design.size_edges), size_adv, side="right")


def _draw(u: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Row-wise categorical draw at uniforms `u` from each row of `probs`; an arm with
    probability 0 is never drawn."""
    cum = np.cumsum(probs, axis=1)
    cum[:, -1] = 1.0  # a sum of 1 - 1e-16 must not leave a gap at the top
    return (u[:, None] >= cum).sum(axis=1)


def assign(design: AlgoAssignment, rng: np.random.Generator, size_adv: np.ndarray) -> Allocation:
    """Each order's algo: drawn by the wheel with probability `wheel_share`, else by its size
    bucket's mix. Draws two uniforms per order."""
    n = size_adv.size
    wheel = rng.random(n) < design.wheel_share
    u = rng.random(n)
    chosen = _draw(u, np.asarray(design.probs)[size_bucket(design, size_adv)])
    wheel_probs = np.asarray(design.wheel_probs)
    drawn = _draw(u, np.tile(wheel_probs, (n, 1)))
    algo = np.where(wheel, drawn, chosen)
    return Allocation(algo, wheel, np.where(wheel, wheel_probs[algo], np.nan))


# The algo test bed's costs (`config.algo_test_bed`). By algo (VWAP, TWAP, POV, IS, DARK):
# - TWAP pays the most of everything: more of the half spread than IS, more impact than DARK
#   and the highest fixed cost (what others make of a schedule on the clock that they can
#   read). Every other algo dominates it: it is the dearest algo for every order, by at least
#   6.8 bps (its fixed cost over IS's, less the LIMIT discount), an excess that does not shrink
#   with size; at the desk's notional mix about 1.5 times the next dearest. That is what lets a
#   difficulty-adjusted scorecard put it alone in the last tier on 20 dates of 1,000 orders
#   despite the designed dispersion;
# - DARK pays a fifth of the half spread but twice IS's impact; IS pays most of it, has the
#   least impact and a fixed cost. Which of the two an order should use depends on its impact
#   part against that fixed cost, that is on its size: DARK below about 0.2% of ADV, IS above
#   about 1% (docs/SIMULATOR.md gives the shares measured);
# - VWAP and POV lie between the two, never the cheapest.
# Urgency keeps the defaults: HIGH pays 1.3 x the spread and 1.5 x the impact of MEDIUM.
ALGO_COSTS = CostDesign(
    pay=(0.55, 0.95, 0.6, 0.9, 0.2),
    algo_impact=(0.85, 1.15, 0.85, 0.55, 1.1),
    algo_fixed_bps=(2.0, 12.0, 1.8, 3.4, 0.0),
)


def dominated(design: CostDesign) -> dict[int, list[int]]:
    """The algos another algo dominates in `design` (costs no more in the spread paid, the
    impact and the fixed cost, and less in one): algo -> the algos that dominate it. Such an
    algo costs more than its dominator for every order."""
    coef = np.array([design.pay, design.algo_impact, design.algo_fixed_bps])
    out: dict[int, list[int]] = {}
    for a in range(coef.shape[1]):
        by = [
            b
            for b in range(coef.shape[1])
            if b != a and (coef[:, b] <= coef[:, a]).all() and (coef[:, b] < coef[:, a]).any()
        ]
        if by:
            out[a] = by
    return out
