//! Reads one scenario's table: each option by k6's name, with its default, and errors that
//! name the scenario and the option ("scenario X: option Y: ..."), better than serde's.

use super::stage::Stage;
use super::values::{count_value, duration_value};
use crate::error::{Error, Result};
use serde_json::{Map, Value};
use std::time::Duration;

/// A scenario's options as the script wrote them.
pub struct ScenarioReader<'a> {
    pub name: &'a str,
    pub table: &'a Map<String, Value>,
}

impl ScenarioReader<'_> {
    /// An error about option `key` of this scenario.
    pub fn error(&self, key: &str, why: impl std::fmt::Display) -> Error {
        Error::config(format!("scenario {}: option {key}: {why}", self.name))
    }

    /// A duration option; `None` as default makes it required.
    pub fn duration(&self, key: &str, default: Option<Duration>) -> Result<Duration> {
        match (self.table.get(key), default) {
            (Some(v), _) => duration_value(v).map_err(|e| self.error(key, e)),
            (None, Some(d)) => Ok(d),
            (None, None) => Err(self.error(key, "is required")),
        }
    }

    /// A count option (VUs, iterations, rates); `None` as default makes it required.
    pub fn count(&self, key: &str, default: Option<u64>) -> Result<u64> {
        match (self.table.get(key), default) {
            (Some(v), _) => count_value(v).map_err(|e| self.error(key, e)),
            (None, Some(d)) => Ok(d),
            (None, None) => Err(self.error(key, "is required")),
        }
    }

    /// A required list of stages.
    pub fn stages(&self, key: &str) -> Result<Vec<Stage>> {
        let v = self
            .table
            .get(key)
            .ok_or_else(|| self.error(key, "is required"))?;
        Stage::list_from_json(v, &format!("scenario {}: option {key}", self.name))
    }
}
