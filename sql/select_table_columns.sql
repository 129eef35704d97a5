select column_name, data_type from information_schema.columns
where table_schema = $schema and table_name = $name
order by ordinal_position
