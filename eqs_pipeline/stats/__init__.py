"""Mix-adjusted group means (venues, algos, broker x algo pairs) with cluster-robust confidence
intervals, and rank tiers. The code names the compared group "venue", where it was first used;
any key column serves (`venue=` of the entry points).

The model, the estimand, both interval methods, the CR2 computation and its cost are derived
in docs/VENUES.md: "Mix adjustment (scorecard): the statistics", "Confidence intervals" and
"Computation at scale" (with "Controls and two comparisons" and "Several metrics at once").
The code follows it, one job per module:

- `design`: the units (one group-by of the rows) and the designs of the scorecard model and of
  the conditional method's working model;
- `groups`: comparison groups, reference mixes and the estimability of each venue's contrast;
- `covariance`: the residual scores (CR1) and the working model's CR2 scores, and each
  cluster's influence on each venue's estimate;
- `inference`: standard errors, degrees of freedom, intervals and the published estimates;
- `estimates`: the entry points, `adjusted_means`, `adjusted_means_many`,
  `adjusted_means_designs` and `adjusted_means_strata` (one model per stratum);
- `strata`: standardization over strata: each venue's adjusted mean within each stratum,
  combined with the strata's shares of the weight (`stratified_means`), and the pieces the
  recommended mix's evidence shares;
- `tiers`: rank tiers of scores whose differences the data can tell apart;
- `scorecard`: what every scorecard builds of them: the metrics' columns, the composite score
  with its interval, the rank tiers of the rankable subjects and the notes.
"""

from eqs_pipeline.stats.estimates import (
    Design,
    adjusted_means,
    adjusted_means_designs,
    adjusted_means_many,
    adjusted_means_strata,
)
from eqs_pipeline.stats.groups import REFERENCES, Reference
from eqs_pipeline.stats.inference import (
    METHODS,
    MIN_VENUE_CLUSTERS,
    Method,
    VenueEstimates,
    combine_influence,
    effective_df,
    influence_se,
    influence_t,
    t_quantile,
    t_quantile_df,
)
from eqs_pipeline.stats.strata import (
    Stratum,
    standardized,
    stratified_means,
    stratum_frames,
    stratum_influence,
    stratum_label,
    within_stratum,
)
from eqs_pipeline.stats.tiers import tier_members, tiers

__all__ = [
    "METHODS",
    "MIN_VENUE_CLUSTERS",
    "REFERENCES",
    "Design",
    "Method",
    "Reference",
    "Stratum",
    "VenueEstimates",
    "adjusted_means",
    "adjusted_means_designs",
    "adjusted_means_many",
    "adjusted_means_strata",
    "combine_influence",
    "effective_df",
    "influence_se",
    "influence_t",
    "standardized",
    "stratified_means",
    "stratum_frames",
    "stratum_influence",
    "stratum_label",
    "t_quantile",
    "t_quantile_df",
    "tier_members",
    "tiers",
    "within_stratum",
]
