-- TMF639 administrative state: an operator locks and unlocks resources. The usage state is not
-- stored: it follows from the services placed on a resource (inventory.states.usage_state).
ALTER TABLE resources ADD CONSTRAINT resources_administrative_state
    CHECK (administrative_state IN ('locked', 'unlocked'));
ALTER TABLE resources DROP COLUMN usage_state;
