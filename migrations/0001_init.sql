-- appliance schema, version 1.
-- Times are Unix seconds (UTC) unless the column name ends in _ms.

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    name          TEXT    NOT NULL UNIQUE COLLATE NOCASE,
    password_hash TEXT    NOT NULL,            -- PHC string, argon2id
    is_admin      INTEGER NOT NULL DEFAULT 0,
    email         TEXT,                        -- for inbox digests
    email_digest  INTEGER NOT NULL DEFAULT 1,  -- wants digests when away
    last_seen_at  INTEGER,                     -- last WebSocket session open or close
    last_digest_at INTEGER,
    created_at    INTEGER NOT NULL
);

CREATE TABLE sessions (
    token_hash  BLOB    PRIMARY KEY,           -- sha256 of the cookie value
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);

-- Bearer tokens for scripts (`appliance token create`); only the hash is kept.
CREATE TABLE api_tokens (
    token_hash  BLOB    PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name        TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE spaces (
    id          INTEGER PRIMARY KEY,
    slug        TEXT    NOT NULL UNIQUE,
    name        TEXT    NOT NULL,
    -- Stemming of the search index: 'fr', 'en', or 'both'.
    language    TEXT    NOT NULL DEFAULT 'both' CHECK (language IN ('fr', 'en', 'both')),
    created_at  INTEGER NOT NULL
);

CREATE TABLE memberships (
    space_id    INTEGER NOT NULL REFERENCES spaces(id) ON DELETE CASCADE,
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role        TEXT    NOT NULL CHECK (role IN ('owner', 'member', 'viewer')),
    PRIMARY KEY (space_id, user_id)
);

-- One row per Telegram chat the bot has heard from. space_id NULL = pending.
CREATE TABLE telegram_chats (
    chat_id       INTEGER PRIMARY KEY,
    type          TEXT    NOT NULL,
    title         TEXT    NOT NULL,
    space_id      INTEGER REFERENCES spaces(id) ON DELETE SET NULL,
    first_seen_at INTEGER NOT NULL,
    last_seen_at  INTEGER NOT NULL
);

-- Codes shown in the UI; `/link CODE` sent in a chat binds that chat to the space.
CREATE TABLE link_codes (
    code        TEXT    PRIMARY KEY,
    space_id    INTEGER NOT NULL REFERENCES spaces(id) ON DELETE CASCADE,
    expires_at  INTEGER NOT NULL
);

-- Raw updates exactly as received, committed before Telegram gets its 200.
CREATE TABLE telegram_updates (
    update_id   INTEGER PRIMARY KEY,
    raw         TEXT    NOT NULL,
    source      TEXT    NOT NULL CHECK (source IN ('webhook', 'polling')),
    received_at INTEGER NOT NULL,
    chat_id     INTEGER,
    state       TEXT    NOT NULL DEFAULT 'received'
                CHECK (state IN ('received', 'processed', 'deferred', 'ignored')),
    note        TEXT
);
CREATE INDEX telegram_updates_deferred ON telegram_updates(chat_id) WHERE state = 'deferred';

-- Messages from every source. `source` is 'telegram' (the bot), 'telegram_export',
-- 'whatsapp', 'upload' or 'dir'; (source, chat_id, message_id) identifies a message,
-- so importing the same export twice adds nothing.
CREATE TABLE messages (
    id                  INTEGER PRIMARY KEY,
    space_id            INTEGER NOT NULL REFERENCES spaces(id) ON DELETE CASCADE,
    source              TEXT    NOT NULL DEFAULT 'telegram',
    chat_id             INTEGER NOT NULL,
    chat_title          TEXT,
    message_id          INTEGER NOT NULL,
    sender_id           INTEGER,
    sender_name         TEXT,
    sent_at             INTEGER NOT NULL,
    edited_at           INTEGER,
    text                TEXT,
    caption             TEXT,
    media_group_id      TEXT,
    reply_to_message_id INTEGER,
    forward_origin      TEXT,
    update_id           INTEGER,
    deleted_at          INTEGER,
    UNIQUE (source, chat_id, message_id)
);
CREATE INDEX messages_space ON messages(space_id, sent_at);

-- Content-addressed files in the vault, shared by every space that holds them.
CREATE TABLE blobs (
    sha256        TEXT    PRIMARY KEY,         -- lowercase hex
    bytes         INTEGER NOT NULL,
    mime          TEXT    NOT NULL,            -- sniffed from magic bytes
    width         INTEGER,
    height        INTEGER,
    taken_at      TEXT,                        -- EXIF DateTimeOriginal, ISO 8601, camera local time
    camera        TEXT,
    has_thumbnail INTEGER NOT NULL DEFAULT 0,
    thumb_note    TEXT,                        -- why there is no thumbnail
    created_at    INTEGER NOT NULL
);

-- Album items: one per (space, content). Rows for the same content in the same
-- space sent again are kept as state 'duplicate' pointing at the first one.
CREATE TABLE media (
    id             INTEGER PRIMARY KEY,
    space_id       INTEGER NOT NULL REFERENCES spaces(id) ON DELETE CASCADE,
    message_id     INTEGER REFERENCES messages(id) ON DELETE SET NULL,
    kind           TEXT    NOT NULL CHECK (kind IN
                   ('photo', 'video', 'animation', 'audio', 'voice', 'video_note', 'document')),
    file_id        TEXT    NOT NULL,
    file_unique_id TEXT    NOT NULL,
    file_name      TEXT,
    declared_mime  TEXT,
    declared_bytes INTEGER,
    duration_s     INTEGER,
    thumbnail_file_id TEXT,                    -- Telegram's own preview (video poster, cover)
    caption        TEXT,
    sender_name    TEXT,
    chat_id        INTEGER,
    media_group_id TEXT,
    received_at    INTEGER NOT NULL,
    sha256         TEXT    REFERENCES blobs(sha256),
    state          TEXT    NOT NULL DEFAULT 'pending'
                   CHECK (state IN ('pending', 'stored', 'duplicate', 'failed', 'deleted')),
    duplicate_of   INTEGER REFERENCES media(id),
    error          TEXT,
    UNIQUE (space_id, file_unique_id)
);
CREATE UNIQUE INDEX media_space_content ON media(space_id, sha256) WHERE state = 'stored';
CREATE INDEX media_album ON media(space_id, state, id);

-- Durable background jobs. run_at_ms is when the job may next run.
CREATE TABLE jobs (
    id           INTEGER PRIMARY KEY,
    kind         TEXT    NOT NULL,
    payload      TEXT    NOT NULL,             -- JSON
    dedup_key    TEXT    UNIQUE,
    space_id     INTEGER,
    state        TEXT    NOT NULL DEFAULT 'queued'
                 CHECK (state IN ('queued', 'running', 'done', 'failed')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    run_at_ms    INTEGER NOT NULL,
    last_error   TEXT,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);
CREATE INDEX jobs_ready ON jobs(state, run_at_ms);

-- Small persistent settings of the running system (e.g. the getUpdates offset).
CREATE TABLE kv (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- Documents of the search index that must be (re)written from the database:
-- 'm:<messages.id>' or 'f:<media.id>'. Written in the same transaction as the
-- change; removed only after the index commit that reflects it.
CREATE TABLE index_queue (
    doc_key TEXT    PRIMARY KEY,
    seq     INTEGER NOT NULL
);

-- The studio inbox: contacts, appointments, conversations and their messages.
CREATE TABLE contacts (
    id               INTEGER PRIMARY KEY,
    space_id         INTEGER NOT NULL REFERENCES spaces(id) ON DELETE CASCADE,
    name             TEXT    NOT NULL,
    telegram_user_id INTEGER,
    email            TEXT,
    phone            TEXT,
    created_at       INTEGER NOT NULL,
    UNIQUE (space_id, telegram_user_id)
);

CREATE TABLE appointments (
    id               INTEGER PRIMARY KEY,
    space_id         INTEGER NOT NULL REFERENCES spaces(id) ON DELETE CASCADE,
    contact_id       INTEGER NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    starts_at        INTEGER NOT NULL,
    duration_minutes INTEGER NOT NULL CHECK (duration_minutes > 0),
    status           TEXT    NOT NULL DEFAULT 'booked' CHECK (status IN ('booked', 'cancelled', 'done')),
    notes            TEXT,
    created_at       INTEGER NOT NULL
);

CREATE TABLE conversations (
    id               INTEGER PRIMARY KEY,
    space_id         INTEGER NOT NULL REFERENCES spaces(id) ON DELETE CASCADE,
    contact_id       INTEGER NOT NULL REFERENCES contacts(id) ON DELETE CASCADE,
    appointment_id   INTEGER UNIQUE REFERENCES appointments(id) ON DELETE SET NULL,
    title            TEXT,
    archived         INTEGER NOT NULL DEFAULT 0,
    last_message_at  INTEGER NOT NULL,
    created_at       INTEGER NOT NULL
);
CREATE INDEX conversations_list ON conversations(space_id, archived, last_message_at);

CREATE TABLE inbox_messages (
    id              INTEGER PRIMARY KEY,
    conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    author_kind     TEXT    NOT NULL CHECK (author_kind IN ('staff', 'contact', 'system')),
    author_user_id  INTEGER REFERENCES users(id) ON DELETE SET NULL,
    text            TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    deleted_at      INTEGER,
    -- Delivery of a staff message to the contact's Telegram: NULL (not bridged), 'pending', 'sent', 'failed'.
    delivery        TEXT,
    delivery_error  TEXT
);
CREATE INDEX inbox_messages_conversation ON inbox_messages(conversation_id, id);

-- Up to 5 images per message, in the vault.
CREATE TABLE inbox_attachments (
    message_id INTEGER NOT NULL REFERENCES inbox_messages(id) ON DELETE CASCADE,
    position   INTEGER NOT NULL,
    sha256     TEXT    NOT NULL REFERENCES blobs(sha256),
    PRIMARY KEY (message_id, position)
);

-- Per-participant read state: the last message each staff member has read.
CREATE TABLE conversation_reads (
    conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    user_id         INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    last_read_id    INTEGER NOT NULL,
    PRIMARY KEY (conversation_id, user_id)
);
