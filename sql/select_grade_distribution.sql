select quality_grade, count(*) as orders
from quality.order_quality
where quality_grade is not null  -- orders not graded are counted apart (ungraded_orders)
group by quality_grade
order by case quality_grade
    when 'excellent' then 1 when 'good' then 2 when 'average' then 3 else 4
end
