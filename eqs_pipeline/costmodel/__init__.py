"""Expected cost of an order before it trades: the seam between scoring and the cost model.

`quality.orders.order_quality` asks a `CostModel` for `expected_cost_bps`; the score compares
the realized implementation shortfall with it. `AlmgrenCostModel` (Almgren et al. 2005, with
the coefficients of `core.settings.CostModelSettings`) is the default; a trained model that
implements the same protocol replaces it without touching scoring.
"""

from eqs_pipeline.costmodel.almgren import AlmgrenCostModel, almgren_expected_cost_bps
from eqs_pipeline.costmodel.base import FEATURES, CostModel

__all__ = ["FEATURES", "AlmgrenCostModel", "CostModel", "almgren_expected_cost_bps"]
