//! Router-level integration tests of Steno, each scenario run on SQLite and on PostgreSQL.
mod support;

mod accounts;
mod bad_input;
mod csrf;
mod documents;
mod fixtures;
mod hostile_uploads;
mod isolation;
mod letters;
mod migration;
mod operations;
mod permissions;
mod privacy;
mod sessions;
mod throttling;
mod ui;
