-- Root-cause correlation (TMF642 isRootCause, parentAlarm): a link alarm that follows the alarm
-- of a node at one of its ends is a symptom of it.
ALTER TABLE alarms ADD COLUMN is_root_cause boolean NOT NULL DEFAULT true;
ALTER TABLE alarms ADD COLUMN parent_alarm_id text;
CREATE INDEX alarms_by_parent ON alarms (parent_alarm_id) WHERE parent_alarm_id IS NOT NULL;
