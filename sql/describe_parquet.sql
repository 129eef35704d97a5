describe select * from read_parquet($path)
