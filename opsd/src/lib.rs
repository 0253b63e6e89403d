//! opsd, the operations control plane for Steno: the pure rollout core, the platforms it drives,
//! the store, the reconciler, the API and the pieces `opsd up` wires together.
pub mod api;
pub mod auth;
pub mod aws_commands;
pub mod config;
pub mod control;
pub mod core;
pub mod dashboard;
pub mod data_plane;
pub mod error_chain;
pub mod follower;
pub mod leadership;
pub mod loadgen;
pub mod notify;
pub mod ops;
pub mod package;
pub mod platform;
pub mod private_files;
pub mod store;
pub mod up;

#[cfg(test)]
mod iam_policy_tests;
#[cfg(test)]
mod layering_tests;
