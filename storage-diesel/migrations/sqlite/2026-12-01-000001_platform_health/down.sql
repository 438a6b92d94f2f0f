DROP TABLE platform_health_minutes;
