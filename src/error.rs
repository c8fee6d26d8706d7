//! The error vocabulary of the engine and its mapping to k6's exit codes.
//!
//! Library code returns `Error`; only `main.rs` prints it and exits.

use std::fmt;

/// k6's exit codes (errext/exitcodes), plus the ones the engine adds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// Thresholds have failed (k6: 99).
    ThresholdsFailed = 99,
    /// setup() timed out (k6: 100).
    SetupTimeout = 100,
    /// teardown() timed out (k6: 101).
    TeardownTimeout = 101,
    /// Invalid configuration: bad option, threshold or scenario (k6: 104).
    InvalidConfig = 104,
    /// Stopped by SIGINT/SIGTERM (k6: 105).
    ExternalAbort = 105,
    /// Exception in init code or setup() (k6: 107).
    ScriptException = 107,
    /// `exec.test.abort()` was called (k6: 108).
    ScriptAborted = 108,
    /// Any other error: missing file, no resources (k6: 255, "-1").
    Generic = 255,
}

/// An error that ends a run (or a `serve`/`inspect` command).
#[derive(Debug)]
pub struct Error {
    pub code: ExitCode,
    pub message: String,
}

impl Error {
    pub fn new(code: ExitCode, message: impl Into<String>) -> Self {
        Error {
            code,
            message: message.into(),
        }
    }
    pub fn config(message: impl Into<String>) -> Self {
        Self::new(ExitCode::InvalidConfig, message)
    }
    pub fn script(message: impl Into<String>) -> Self {
        Self::new(ExitCode::ScriptException, message)
    }
    pub fn generic(message: impl Into<String>) -> Self {
        Self::new(ExitCode::Generic, message)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

pub type Result<T, E = Error> = std::result::Result<T, E>;
