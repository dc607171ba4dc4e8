-- KPI samples aggregated in tumbling windows per resource and indicator.
CREATE TABLE kpi_windows (
    resource_id   text NOT NULL,
    indicator     text NOT NULL,
    window_start  timestamptz NOT NULL,
    resource_type text NOT NULL,
    samples       integer NOT NULL,
    total         double precision NOT NULL,
    maximum       double precision NOT NULL,
    evaluated     boolean NOT NULL DEFAULT false,
    PRIMARY KEY (resource_id, indicator, window_start)
);
CREATE INDEX kpi_windows_open ON kpi_windows (resource_id, indicator) WHERE NOT evaluated;

-- Which indicators are above their threshold now (a threshold-crossing alarm is active).
CREATE TABLE threshold_states (
    resource_id text NOT NULL,
    indicator   text NOT NULL,
    crossed     boolean NOT NULL,
    since       timestamptz NOT NULL,
    PRIMARY KEY (resource_id, indicator)
);

-- The latest capacity forecast of each resource and indicator.
CREATE TABLE capacity_forecasts (
    resource_id   text NOT NULL,
    indicator     text NOT NULL,
    computed_at   timestamptz NOT NULL,
    windows       integer NOT NULL,
    level         double precision NOT NULL,
    slope_per_day double precision NOT NULL,
    exhaustion_at timestamptz,
    PRIMARY KEY (resource_id, indicator)
);
