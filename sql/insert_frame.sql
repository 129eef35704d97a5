insert into {table} by name select * from _frame
