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

/// Options every scenario has, whatever its executor.
const COMMON: &[&str] = &[
    "executor",
    "exec",
    "startTime",
    "gracefulStop",
    "env",
    "tags",
];

impl ScenarioReader<'_> {
    /// Refuses a key that is neither common nor the executor's own: a typo (`maxVus`,
    /// `gracefulstop`) would otherwise change the test quietly. k6 refuses them too.
    pub fn check_keys(&self, executor: &str, own: &[&str]) -> Result<()> {
        for key in self.table.keys() {
            if COMMON.contains(&key.as_str()) || own.contains(&key.as_str()) {
                continue;
            }
            let known: Vec<&str> = COMMON.iter().chain(own).copied().collect();
            let hint = match nearest(key, &known) {
                Some(k) => format!(" (did you mean {k:?}?)"),
                None => format!(" ({executor} takes {})", own.join(", ")),
            };
            return Err(Error::config(format!(
                "scenario {}: unknown option {key:?}{hint}",
                self.name
            )));
        }
        Ok(())
    }

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

/// The known name closest to `key`: the same but for case, or at most two edits away.
pub fn nearest<'a>(key: &str, known: &[&'a str]) -> Option<&'a str> {
    if let Some(k) = known.iter().find(|k| k.eq_ignore_ascii_case(key)) {
        return Some(k);
    }
    known
        .iter()
        .map(|k| {
            (
                edit_distance(&key.to_ascii_lowercase(), &k.to_ascii_lowercase()),
                *k,
            )
        })
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, k)| k)
}

/// Levenshtein distance over bytes (option names are ASCII).
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let swap = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + swap).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_the_nearest_option() {
        let known = ["maxVUs", "preAllocatedVUs", "gracefulStop", "duration"];
        assert_eq!(nearest("maxVus", &known), Some("maxVUs"));
        assert_eq!(nearest("gracefulstop", &known), Some("gracefulStop"));
        assert_eq!(nearest("duraton", &known), Some("duration"));
        assert_eq!(nearest("rate", &known), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
