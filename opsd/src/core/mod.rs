//! The pure decision core: traffic samples, rollout plans, alarm rules, canary analysis, the
//! rollout state machine with its watch after promotion, alarm states in production and the stable
//! release's health, DR drill verdicts with their schedules, cost budgets, forecasts and anomalies,
//! deploy windows, schema changes across a rollout (expand/contract), and runbooks (parsed, and
//! the record of a run).
//! invariant: nothing here awaits, reads a clock, or does I/O.
pub mod alarm_state;
pub mod alarms;
pub mod analysis;
pub mod approval;
pub mod config_error;
pub mod cost;
pub mod documents;
pub mod drill;
pub mod duration;
pub mod event;
pub mod gate;
pub mod maintenance;
pub mod next_decision;
pub mod plan;
pub mod release;
pub mod release_env;
pub mod restore;
pub mod retention;
pub mod retry;
pub mod rollout;
pub mod rollout_window;
pub mod runbook;
pub mod schedule;
pub mod schema;
pub mod severity;
pub mod stable_health;
pub mod traffic;
pub mod traffic_chart;
pub mod watch;
pub mod window;
