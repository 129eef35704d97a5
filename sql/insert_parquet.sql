insert into {table} by name select * from read_parquet($path)
