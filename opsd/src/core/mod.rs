//! The pure decision core: traffic samples, rollout plans, alarm rules, canary analysis and the
//! rollout state machine. invariant: nothing here awaits, reads a clock, or does I/O.
pub mod alarms;
pub mod analysis;
pub mod config_error;
pub mod cost;
pub mod duration;
pub mod plan;
pub mod rollout;
pub mod severity;
pub mod traffic;
