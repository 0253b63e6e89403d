//! The jobs at opsd's I/O edge that are not the rollout reconciler: DR drills and snapshots
//! (`drill`) with the document store's manifests (`documents`), restores of production (`restore`), cost checks (`costs`), the recording of the
//! router's usage (`usage`), and runbooks: where they are read from (`runbooks`) and how a step runs
//! (`runbook_steps`). Each
//! reads the store and the platforms it is handed and leaves its decisions to `core`.

pub mod costs;
pub mod documents;
pub mod drill;
pub mod restore;
pub mod runbook_steps;
pub mod runbooks;
pub mod usage;
