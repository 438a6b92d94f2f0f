-- Integration health: each process's calls to each platform, one row per minute
-- (integrations_core::health). Rows are replaced as a minute's totals grow and pruned
-- after the retention.
CREATE TABLE platform_health_minutes (
    provider VARCHAR(50) NOT NULL,
    minute TEXT NOT NULL,
    instance VARCHAR(64) NOT NULL,
    stats TEXT NOT NULL,
    PRIMARY KEY (provider, minute, instance)
);

CREATE INDEX platform_health_minutes_minute_idx ON platform_health_minutes (minute);
