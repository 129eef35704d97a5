"""Expected cost of an order before it trades (docs/MODEL.md).

Two ways to price an order:
- a formula, through the `CostModel` protocol: `quality.orders.order_quality` asks it for
  `expected_cost_bps` (`AlmgrenCostModel`, Almgren et al. 2005 with the coefficients of
  `core.settings.CostModelSettings`, is the default) and gives the order a logistic cost
  distribution around it (`quality.scoring.formula_distribution`);
- the trained model: features known at arrival (`features`), a Flax network trained
  walk-forward against fitted baselines (`net`, `train`, `baselines`, `evaluate`), stored as an
  artifact (`artifact`) and registered (`registry`); `scoring` prices a trade date's orders
  with the model in service, after the formula, in numpy (`weights`).
`trends` and `forecast` forecast the daily cost series. Only `net` and `forecast` import JAX;
this package's top level imports neither them nor SciPy.
"""

from eqs_pipeline.costmodel.almgren import AlmgrenCostModel, almgren_expected_cost_bps
from eqs_pipeline.costmodel.base import FEATURES, CostModel

__all__ = ["FEATURES", "AlmgrenCostModel", "CostModel", "almgren_expected_cost_bps"]
