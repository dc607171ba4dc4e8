-- A service's resources in path order, so that it can be moved to another path between its ends.
ALTER TABLE service_resources ADD COLUMN position integer;
