delete from staging.quarantine where source_table = $source_table
