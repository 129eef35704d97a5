select count(*) from venue.venue_performance_events where window_end = $window_end
