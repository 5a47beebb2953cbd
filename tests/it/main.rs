//! Integration tests: the real server on an ephemeral port, a temp data dir,
//! and a fake Telegram Bot API.
//!
//! - `telegram`: webhook and polling ingestion end to end, dedup, limits, restarts;
//! - `web`: login, CSRF, membership checks, file serving;
//! - `cli`: the command-line contract, through the built binary;
//! - `search`: the index following the database, privacy, crash and rebuild;
//! - `inbox`, `integrations`: the studio inbox, notifications out, Meta/Stripe in.

mod browser;
mod cli;
mod collections;
mod common;
mod fake_bot;
mod faults;
mod hostile;
mod i18n;
mod import;
mod inbox;
mod integrations;
mod ops;
mod search;
mod security;
mod telegram;
mod vault_s3;
mod web;
