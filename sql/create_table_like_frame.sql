-- Creates an empty table with the columns and types of the frame registered as _frame.
create table if not exists {table} as select * from _frame limit 0
