DROP TABLE webhook_deliveries;
DROP TABLE webhook_cursors;
DROP TABLE connection_events;
