describe select * from _frame
