select 1 from information_schema.tables
where table_schema = $schema and table_name = $name and table_type = 'VIEW'
