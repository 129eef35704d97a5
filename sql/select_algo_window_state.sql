select min(inputs_fingerprint) as inputs_fingerprint from algo.algo_scorecard
