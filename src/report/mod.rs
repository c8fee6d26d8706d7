//! Every human- or machine-readable rendering of a run: the banner, the end-of-test summary,
//! its JSON export and the live progress line. Reads snapshots; computes no statistics.

pub mod export;
pub mod format;
mod groups;
pub mod outputs;
pub mod progress;
pub mod summary;
