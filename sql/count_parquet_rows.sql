select count(*) from read_parquet($path)
