-- TMF642 crossedThresholdInformation of threshold-crossing alarms: indicator, observed value,
-- threshold, direction, granularity.
ALTER TABLE alarms ADD COLUMN crossed_threshold jsonb;
