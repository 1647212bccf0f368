-- Rotating a webhook signing secret without downtime: with ``keep_previous`` the old key
-- keeps signing (a second signature in ``webhook-signature``, as Standard Webhooks allows)
-- until ``previous_until``, so receivers can switch keys at their own pace.
ALTER TABLE webhook_secrets
    ADD COLUMN previous_secret bytea,
    ADD COLUMN previous_until  timestamptz,
    ADD CONSTRAINT webhook_secrets_previous_length
        CHECK (previous_secret IS NULL OR octet_length(previous_secret) BETWEEN 24 AND 64),
    ADD CONSTRAINT webhook_secrets_previous_until
        CHECK ((previous_secret IS NULL) = (previous_until IS NULL));
