-- Creates an empty table with the columns and types of the Parquet file $path.
create table if not exists {table} as select * from read_parquet($path) limit 0
