-- TMF638 service lifecycle. A provided service passes designed (path found), reserved (resources
-- held) and active; a terminated one keeps its row, which outages refer to, but holds no resources.
ALTER TABLE services ADD COLUMN activated_at timestamptz;
ALTER TABLE services ADD COLUMN terminated_at timestamptz;
ALTER TABLE services ADD CONSTRAINT services_tmf638_state
    CHECK (state IN ('feasibilityChecked', 'designed', 'reserved', 'inactive', 'active', 'terminated'));
ALTER TABLE services ADD CONSTRAINT services_terminated_when
    CHECK ((state = 'terminated') = (terminated_at IS NOT NULL));
