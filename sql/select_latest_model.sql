-- The latest trained cost model's registry row (the summary's model table).
select *
from model.model_versions
order by trained_at desc, model_version desc
limit 1
