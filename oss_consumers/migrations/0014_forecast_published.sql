-- What the last published forecast said: a trend that drifts a little each window is published
-- once its total move is material, not compared with the previous refit alone.
ALTER TABLE capacity_forecasts ADD COLUMN published_exhaustion_at timestamptz;
UPDATE capacity_forecasts SET published_exhaustion_at = exhaustion_at;
