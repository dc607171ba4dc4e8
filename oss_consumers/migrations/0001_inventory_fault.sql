-- Inventory: the network (TMF639 resources), the services placed on it (TMF638), and which
-- customer holds each service, learned from BSS events.
CREATE TABLE resources (
    id                   text PRIMARY KEY,
    resource_type        text NOT NULL CHECK (resource_type IN ('site', 'node', 'link', 'port', 'cell')),
    name                 text NOT NULL,
    site_id              text,
    a_end                text,
    z_end                text,
    operational_state    text NOT NULL DEFAULT 'enable' CHECK (operational_state IN ('enable', 'disable')),
    administrative_state text NOT NULL DEFAULT 'unlocked',
    usage_state          text NOT NULL DEFAULT 'active'
);

CREATE TABLE services (
    id    text PRIMARY KEY,
    name  text NOT NULL,
    state text NOT NULL DEFAULT 'active'
);

CREATE TABLE service_resources (
    service_id  text NOT NULL REFERENCES services (id),
    resource_id text NOT NULL REFERENCES resources (id),
    PRIMARY KEY (service_id, resource_id)
);
CREATE INDEX service_resources_by_resource ON service_resources (resource_id);

CREATE TABLE customer_services (
    service_id   text PRIMARY KEY,
    customer_id  text NOT NULL,
    sla_tier     text NOT NULL,
    product_name text NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- Fault management: alarms (TMF642), held clears, trouble tickets (TMF621), outages.
CREATE TABLE alarms (
    id                  text PRIMARY KEY,
    reduction_key       text NOT NULL,
    alarmed_object_id   text NOT NULL,
    alarmed_object_type text NOT NULL,
    alarm_type          text NOT NULL,
    probable_cause      text NOT NULL,
    specific_problem    text NOT NULL DEFAULT '',
    perceived_severity  text NOT NULL,
    state               text NOT NULL CHECK (state IN ('raised', 'updated', 'cleared')),
    ack_state           text NOT NULL DEFAULT 'unacknowledged',
    ack_user_id         text,
    service_affecting   boolean NOT NULL,
    source_system_id    text NOT NULL,
    raised_at           timestamptz NOT NULL,
    last_seen_at        timestamptz NOT NULL,
    cleared_at          timestamptz,
    occurrences         integer NOT NULL DEFAULT 1
);
-- One active alarm per reduction key.
CREATE UNIQUE INDEX alarms_active_key ON alarms (reduction_key) WHERE state <> 'cleared';
CREATE INDEX alarms_by_key_cleared ON alarms (reduction_key, cleared_at DESC);

CREATE TABLE held_clears (
    reduction_key text PRIMARY KEY,
    cleared_at    timestamptz NOT NULL,
    held_since    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE trouble_tickets (
    id              text PRIMARY KEY,
    alarm_id        text NOT NULL UNIQUE REFERENCES alarms (id),
    name            text NOT NULL,
    severity        text NOT NULL,
    priority        integer NOT NULL,
    status          text NOT NULL,
    created_at      timestamptz NOT NULL,
    resolved_at     timestamptz
);
CREATE INDEX trouble_tickets_open ON trouble_tickets (status) WHERE resolved_at IS NULL;

CREATE TABLE service_outages (
    id          text PRIMARY KEY,
    service_id  text NOT NULL REFERENCES services (id),
    resource_id text NOT NULL,
    alarm_id    text NOT NULL,
    started_at  timestamptz NOT NULL,
    restored_at timestamptz
);
-- One open outage per service; every active alarm that keeps it down is a cause.
CREATE UNIQUE INDEX service_outages_open ON service_outages (service_id) WHERE restored_at IS NULL;

CREATE TABLE outage_causes (
    outage_id text NOT NULL REFERENCES service_outages (id),
    alarm_id  text NOT NULL,
    PRIMARY KEY (outage_id, alarm_id)
);
CREATE INDEX outage_causes_by_alarm ON outage_causes (alarm_id);
