alter table {table} add column {column} {data_type}
