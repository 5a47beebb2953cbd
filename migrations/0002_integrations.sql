-- Integrations: notifications out, Meta and Stripe webhooks in, autoresponder.
-- Secrets (tokens, webhook secrets, SMTP URLs) are stored sealed with
-- AES-256-GCM (`src/secrets.rs`), never in clear.

-- An outbound notification target of a space.
CREATE TABLE integrations (
    id            INTEGER PRIMARY KEY,
    space_id      INTEGER NOT NULL REFERENCES spaces(id) ON DELETE CASCADE,
    kind          TEXT    NOT NULL CHECK (kind IN ('webhook', 'telegram', 'discord', 'slack', 'email')),
    -- webhook/discord/slack: the URL; telegram: the chat id; email: the recipient address.
    target        TEXT    NOT NULL,
    -- webhook: whsec_ secret; telegram: bot token; email: SMTP URL (optional). Sealed.
    secret_sealed TEXT,
    -- Comma-separated event types (media.added, message.received, ingest.failed, system.status, stats.daily).
    events        TEXT    NOT NULL,
    enabled       INTEGER NOT NULL DEFAULT 1,
    created_at    INTEGER NOT NULL
);
CREATE INDEX integrations_space ON integrations(space_id);

-- One event for one integration: the delivery log.
CREATE TABLE deliveries (
    id             INTEGER PRIMARY KEY,
    integration_id INTEGER NOT NULL REFERENCES integrations(id) ON DELETE CASCADE,
    -- Standard Webhooks `webhook-id`: the same on every attempt.
    event_id       TEXT    NOT NULL,
    event_type     TEXT    NOT NULL,
    payload        TEXT    NOT NULL,
    state          TEXT    NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts       INTEGER NOT NULL DEFAULT 0,
    last_error     TEXT,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);
CREATE INDEX deliveries_integration ON deliveries(integration_id, id);

-- Raw inbound webhook payloads (Meta, Stripe), committed before the 200.
CREATE TABLE webhook_events (
    id          INTEGER PRIMARY KEY,
    source      TEXT    NOT NULL CHECK (source IN ('meta', 'stripe')),
    -- Stripe's event id (deduplication); NULL for Meta (one POST may carry many entries).
    external_id TEXT,
    body        BLOB    NOT NULL,
    -- 'received', 'processed', 'ignored' (nothing for us in it), 'failed'.
    state       TEXT    NOT NULL DEFAULT 'received',
    note        TEXT,
    received_at INTEGER NOT NULL,
    UNIQUE (source, external_id)
);

-- Which space a WhatsApp phone number id or an Instagram account id belongs to.
CREATE TABLE meta_accounts (
    account_id TEXT    PRIMARY KEY,
    kind       TEXT    NOT NULL CHECK (kind IN ('whatsapp', 'instagram')),
    space_id   INTEGER NOT NULL REFERENCES spaces(id) ON DELETE CASCADE
);

ALTER TABLE contacts ADD COLUMN whatsapp_id TEXT;
ALTER TABLE contacts ADD COLUMN instagram_id TEXT;
CREATE UNIQUE INDEX contacts_whatsapp ON contacts(space_id, whatsapp_id);
CREATE UNIQUE INDEX contacts_instagram ON contacts(space_id, instagram_id);

-- The channel's own message id (WhatsApp wamid, Instagram mid): deduplicates
-- redelivered webhooks and matches status callbacks to our messages.
ALTER TABLE inbox_messages ADD COLUMN external_id TEXT;
CREATE UNIQUE INDEX inbox_messages_external ON inbox_messages(external_id);

ALTER TABLE appointments ADD COLUMN deposit_paid_at INTEGER;

-- Autoresponder of a space.
CREATE TABLE autoresponders (
    space_id       INTEGER PRIMARY KEY REFERENCES spaces(id) ON DELETE CASCADE,
    -- 'off', 'away', 'busy', or 'schedule' (the weekly schedule decides).
    mode           TEXT    NOT NULL DEFAULT 'off' CHECK (mode IN ('off', 'away', 'busy', 'schedule')),
    -- JSON: {"open": [[weekday 0=Mon, "HH:MM", "HH:MM"], ...]}: outside these hours the mode is away.
    schedule       TEXT,
    away_en        TEXT,
    away_fr        TEXT,
    busy_en        TEXT,
    busy_fr        TEXT,
    cooldown_hours INTEGER NOT NULL DEFAULT 12,
    -- Comma-separated contact ids never auto-answered.
    never          TEXT    NOT NULL DEFAULT ''
);

CREATE TABLE auto_replies (
    id         INTEGER PRIMARY KEY,
    space_id   INTEGER NOT NULL REFERENCES spaces(id) ON DELETE CASCADE,
    contact_id INTEGER NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    sent_at    INTEGER NOT NULL
);
CREATE INDEX auto_replies_contact ON auto_replies(contact_id, sent_at);

-- The space's IANA time zone: scheduled posts and the autoresponder's week.
ALTER TABLE spaces ADD COLUMN time_zone TEXT NOT NULL DEFAULT 'UTC';

-- A text or an album item to send to a bound chat at a time.
CREATE TABLE scheduled_posts (
    id         INTEGER PRIMARY KEY,
    space_id   INTEGER NOT NULL REFERENCES spaces(id) ON DELETE CASCADE,
    chat_id    INTEGER NOT NULL,
    text       TEXT    NOT NULL DEFAULT '',
    media_id   INTEGER REFERENCES media(id) ON DELETE SET NULL,
    -- Unix seconds (UTC).
    run_at     INTEGER NOT NULL,
    state      TEXT    NOT NULL DEFAULT 'scheduled' CHECK (state IN ('scheduled', 'sent', 'cancelled', 'failed')),
    error      TEXT,
    created_at INTEGER NOT NULL
);
CREATE INDEX scheduled_posts_space ON scheduled_posts(space_id, run_at);
