select
    min(inputs_fingerprint) as inputs_fingerprint,
    max(window_end) as window_end
from venue.venue_scorecard
