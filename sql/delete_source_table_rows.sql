delete from {table} where source_table = $source_table
