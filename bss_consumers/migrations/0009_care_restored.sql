-- The services of a case that came back: a late or republished outage of one of them neither
-- adds it to the case again nor reopens a resolved case.
ALTER TABLE care_cases ADD COLUMN services_restored text[] NOT NULL DEFAULT '{}';
