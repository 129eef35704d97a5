select count(*) from quality.fill_quality
