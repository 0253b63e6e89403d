//! Steno, the demand-letter generator: library root wiring the modules the `steno` binary serves.
//!
//! Layers, outside in: `http` (router, API, UI) → `accounts` and `service` (operations,
//! validation, firm scoping, throttling) → `db`, `storage`, `drafting`, `extractor` (which runs
//! `extract` in a bounded child process), `export` (each owning one concern); `limits` names the
//! bounds on a request's work. `probe` is a client of the API (`steno probe`), not part of the
//! server.
pub mod accounts;
pub mod auth;
pub mod client_identity;
pub mod clock;
pub mod config;
pub mod db;
pub mod drafting;
pub mod error;
pub mod export;
pub mod extract;
pub mod extractor;
pub mod http;
pub mod lambda_metrics;
pub mod limits;
pub mod metrics;
pub mod model;
pub mod password_hashing;
pub mod password_policy;
pub mod probe;
pub mod request_usage;
pub mod service;
pub mod state;
pub mod status_banner;
pub mod storage;
pub mod throttle;
