drop view {table}
