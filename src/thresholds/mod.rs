//! Thresholds: k6's expression grammar parsed into types, and their verdicts on a snapshot.
//! Printing and exiting belong to the caller.

mod eval;
pub(crate) mod parse;

pub use eval::{evaluate, Verdict};
pub use parse::{parse_all, Aggregation, Expr, Op, Threshold};
