//! A stage of a ramp (`stages`, `-s 30s:100`, `K6_STAGES`).

use super::duration;
use super::values::{count_value, duration_value, parse_count_text};
use crate::error::{Error, Result};
use serde_json::Value;
use std::time::Duration;

/// One stage of a ramp: reach `target` linearly over `duration`.
#[derive(Debug, Clone, PartialEq)]
pub struct Stage {
    pub duration: Duration,
    pub target: u64,
}

impl Stage {
    /// Parses the CLI form `30s:100` (`-s/--stage`, `K6_STAGES`).
    pub fn parse_cli(text: &str) -> Result<Stage> {
        let (d, t) = text.split_once(':').ok_or_else(|| {
            Error::config(format!(
                "invalid stage {text:?}: expected [duration]:[target], e.g. 30s:100"
            ))
        })?;
        let duration = duration::parse(d)
            .map_err(|e| Error::config(format!("invalid stage {text:?}: {e}")))?;
        let target = parse_count_text(t)
            .map_err(|e| Error::config(format!("invalid stage {text:?}: target {e}")))?;
        Ok(Stage { duration, target })
    }

    pub(crate) fn list_from_json(v: &Value, what: &str) -> Result<Vec<Stage>> {
        let items = v.as_array().ok_or_else(|| {
            Error::config(format!("{what}: expected a list of {{duration, target}}"))
        })?;
        items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let at = format!("{what}[{}]", i + 1);
                let d = item
                    .get("duration")
                    .ok_or_else(|| Error::config(format!("{at}: missing duration")))?;
                let t = item
                    .get("target")
                    .ok_or_else(|| Error::config(format!("{at}: missing target")))?;
                Ok(Stage {
                    duration: duration_value(d)
                        .map_err(|e| Error::config(format!("{at}.duration: {e}")))?,
                    target: count_value(t)
                        .map_err(|e| Error::config(format!("{at}.target: {e}")))?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cli_stage() {
        assert_eq!(
            Stage::parse_cli("30s:100").unwrap(),
            Stage {
                duration: Duration::from_secs(30),
                target: 100
            }
        );
        assert!(Stage::parse_cli("30s")
            .unwrap_err()
            .message
            .contains("[duration]:[target]"));
        assert!(Stage::parse_cli("30x:1").is_err());
        assert!(Stage::parse_cli("30s:-1")
            .unwrap_err()
            .message
            .contains("negative"));
    }
}
