-- The active alarms of a resource, for its TMF639 operational state and the network's failed
-- resources: without it each round of a flood scanned every alarm ever raised.
CREATE INDEX alarms_active_by_object ON alarms (alarmed_object_id) WHERE state <> 'cleared';
