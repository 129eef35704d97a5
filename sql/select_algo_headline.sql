-- The algo analysis' headline figures, for the run summary: the algos of the scorecard's first
-- tier and the desk's expected saving from the recommended algo mix (its totals row).
select
    (
        select string_agg(algo, ', ' order by algo)
        from algo.algo_scorecard
        where rank = 1
    ) as tier_1_algos,
    (
        select expected_saving_bps
        from algo.algo_recommendations
        where difficulty_bucket = 'all' and algo is null
    ) as algo_saving_bps,
    (
        select expected_saving_per_month
        from algo.algo_recommendations
        where difficulty_bucket = 'all' and algo is null
    ) as algo_saving_per_month
