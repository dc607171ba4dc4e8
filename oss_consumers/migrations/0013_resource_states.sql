-- TMF639 administrative and usage states: an operator locks and unlocks resources; usage follows
-- the services placed on them (inventory sets it at start-up and as services come and go).
ALTER TABLE resources ALTER COLUMN usage_state SET DEFAULT 'idle';
ALTER TABLE resources ADD CONSTRAINT resources_administrative_state
    CHECK (administrative_state IN ('locked', 'unlocked'));
ALTER TABLE resources ADD CONSTRAINT resources_usage_state CHECK (usage_state IN ('idle', 'active', 'busy'));
