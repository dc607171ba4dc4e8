-- Full alarm history: every change of an alarm's state, severity or acknowledgement, written by
-- statement-level triggers so that set-based batches stay set-based.
CREATE TABLE alarm_history (
    id                 bigserial PRIMARY KEY,
    alarm_id           text NOT NULL,
    changed_at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    state              text NOT NULL,
    perceived_severity text NOT NULL,
    ack_state          text NOT NULL,
    ack_user_id        text,
    occurrences        integer NOT NULL
);
CREATE INDEX alarm_history_by_alarm ON alarm_history (alarm_id, id);

CREATE FUNCTION alarm_history_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO alarm_history (alarm_id, state, perceived_severity, ack_state, ack_user_id, occurrences)
    SELECT id, state, perceived_severity, ack_state, ack_user_id, occurrences FROM new_rows;
    RETURN NULL;
END $$;

CREATE FUNCTION alarm_history_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO alarm_history (alarm_id, state, perceived_severity, ack_state, ack_user_id, occurrences)
    SELECT n.id, n.state, n.perceived_severity, n.ack_state, n.ack_user_id, n.occurrences
    FROM new_rows n JOIN old_rows o ON o.id = n.id
    WHERE (n.state, n.perceived_severity, n.ack_state) IS DISTINCT FROM (o.state, o.perceived_severity, o.ack_state);
    RETURN NULL;
END $$;

CREATE TRIGGER alarms_history_insert AFTER INSERT ON alarms
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION alarm_history_inserted();
CREATE TRIGGER alarms_history_update AFTER UPDATE ON alarms
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION alarm_history_updated();

-- Tickets that need field work wait for their work order: fault management follows its state.
ALTER TABLE trouble_tickets ADD COLUMN field_work boolean NOT NULL DEFAULT false;
ALTER TABLE trouble_tickets ADD COLUMN work_order_id text;
ALTER TABLE trouble_tickets ADD COLUMN work_order_state text;

-- Workforce: regions, technicians, work orders (TMF697).
CREATE TABLE site_regions (
    site_id text PRIMARY KEY,
    region  text NOT NULL
);

CREATE TABLE technicians (
    id          text PRIMARY KEY,
    name        text NOT NULL,
    region      text NOT NULL,
    skills      text[] NOT NULL,
    shift_start time NOT NULL,
    shift_end   time NOT NULL,
    max_open    integer NOT NULL DEFAULT 2 CHECK (max_open > 0)
);

CREATE TABLE work_orders (
    id              text PRIMARY KEY,
    ticket_id       text NOT NULL UNIQUE,
    alarm_id        text NOT NULL,
    resource_id     text NOT NULL,
    site_id         text,
    region          text,
    required_skill  text NOT NULL,
    priority        integer NOT NULL,
    state           text NOT NULL CHECK (state IN ('acknowledged', 'pending', 'inProgress', 'completed', 'failed', 'cancelled')),
    technician_id   text REFERENCES technicians (id),
    created_at      timestamptz NOT NULL,
    due_at          timestamptz NOT NULL,
    dispatched_at   timestamptz,
    started_at      timestamptz,
    finished_at     timestamptz,
    sla_breached_at timestamptz,
    note            text NOT NULL DEFAULT ''
);
CREATE INDEX work_orders_open ON work_orders (technician_id, state)
    WHERE state IN ('acknowledged', 'pending', 'inProgress');

-- The simulated technicians' planned visits (demo only): when each arrives and finishes.
CREATE TABLE field_visits (
    work_order_id text PRIMARY KEY,
    technician_id text NOT NULL,
    arrive_at     timestamptz NOT NULL,
    finish_at     timestamptz NOT NULL,
    outcome       text NOT NULL,
    arrived       boolean NOT NULL DEFAULT false,
    finished      boolean NOT NULL DEFAULT false
);
