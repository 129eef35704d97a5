delete from {table} where window_end = $window_end
