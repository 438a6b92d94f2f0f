DROP TABLE platform_webhook_receipts;
