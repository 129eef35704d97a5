"""Market and execution simulator: seeded, vectorized synthetic desk data for the landing
contract (instruments, orders, child orders, fills, NBBO quotes, the tape) plus the latent
truth behind it. See docs/SIMULATOR.md.

    from eqs_pipeline.simulate import SimulationConfig, simulate, write_landing
    data = simulate(SimulationConfig(days=3, symbols=8, orders_per_day=200, seed=7))
    write_landing(data, out_dir, formats=("parquet", "csv", "jsonl"))
"""

from .config import DEFAULT_VENUES, Degradation, ImpactParams, SimulationConfig, Venue
from .engine import SimulatedData, SimulatedDay, iter_days, trading_dates
from .landing import TRUTH_DIR, load_truth, simulate, simulate_to_landing, write_landing

__all__ = [
    "DEFAULT_VENUES",
    "TRUTH_DIR",
    "Degradation",
    "ImpactParams",
    "SimulatedData",
    "SimulatedDay",
    "SimulationConfig",
    "Venue",
    "iter_days",
    "load_truth",
    "simulate",
    "simulate_to_landing",
    "trading_dates",
    "write_landing",
]
