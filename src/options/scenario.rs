//! Scenarios: k6's shortcut options (vus, duration, iterations, stages) or the `scenarios`
//! table turned into named scenarios, each with its executor (one file per executor under
//! `exec/executors/`).

use super::reader::ScenarioReader;
use super::ExecSettings;
use crate::error::{Error, Result};
use crate::exec::executors::{
    ConstantVus, ExecutorConfig, PerVuIterations, RampingVus, SharedIterations, DEFAULT_GRACE,
    DEFAULT_MAX_DURATION,
};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

/// One named scenario of the plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    pub name: String,
    pub executor: ExecutorConfig,
    /// Name of the global Lua function each iteration calls.
    pub exec: String,
    pub start_time: Duration,
    pub graceful_stop: Duration,
    pub env: BTreeMap<String, String>,
    pub tags: BTreeMap<String, String>,
}

fn default_scenario(executor: ExecutorConfig) -> Scenario {
    Scenario {
        name: "default".into(),
        executor,
        exec: "default".into(),
        start_time: Duration::ZERO,
        graceful_stop: DEFAULT_GRACE,
        env: BTreeMap::new(),
        tags: BTreeMap::new(),
    }
}

/// k6's shortcut rules (execution_config_shortcuts.go): the merged settings become scenarios.
pub(super) fn from_settings(s: ExecSettings) -> Result<Vec<Scenario>> {
    let conflict =
        |a: &str, b: &str| Error::config(format!("options {a} and {b} cannot be used together"));
    if let Some(scenarios) = s.scenarios {
        if s.iterations.is_some() {
            return Err(conflict("iterations", "scenarios"));
        }
        if s.duration.is_some() {
            return Err(conflict("duration", "scenarios"));
        }
        if s.stages.is_some() {
            return Err(conflict("stages", "scenarios"));
        }
        return parse_scenarios(&scenarios);
    }
    let vus = s.vus;
    let executor = if let Some(iterations) = s.iterations {
        if s.stages.is_some() {
            return Err(conflict("iterations", "stages"));
        }
        ExecutorConfig::SharedIterations(SharedIterations {
            vus: vus.unwrap_or(1),
            iterations,
            max_duration: s.duration.unwrap_or(DEFAULT_MAX_DURATION),
        })
    } else if let Some(duration) = s.duration {
        if s.stages.is_some() {
            return Err(conflict("duration", "stages"));
        }
        if duration.is_zero() {
            return Err(Error::config(
                "option duration: must be greater than 0 (use iterations for a fixed count)",
            ));
        }
        ExecutorConfig::ConstantVus(ConstantVus {
            vus: vus.unwrap_or(1),
            duration,
        })
    } else if let Some(stages) = s.stages {
        ExecutorConfig::RampingVus(RampingVus {
            start_vus: vus.unwrap_or(1),
            stages,
            graceful_ramp_down: DEFAULT_GRACE,
        })
    } else {
        ExecutorConfig::PerVuIterations(PerVuIterations {
            vus: 1,
            iterations: 1,
            max_duration: DEFAULT_MAX_DURATION,
        })
    };
    let scenario = default_scenario(executor);
    validate(&scenario)?;
    Ok(vec![scenario])
}

fn parse_scenarios(v: &Value) -> Result<Vec<Scenario>> {
    let obj = v.as_object().ok_or_else(|| {
        Error::config("option scenarios: expected a table of name = { executor = ... }")
    })?;
    if obj.is_empty() {
        return Err(Error::config(
            "option scenarios: at least one scenario is required",
        ));
    }
    let mut scenarios = obj
        .iter()
        .map(|(name, cfg)| parse_scenario(name, cfg))
        .collect::<Result<Vec<_>>>()?;
    // A Lua table has no order: sort as k6 does (start time, then name) so VU numbers and
    // the banner are the same on every run.
    scenarios.sort_by(|a, b| (a.start_time, &a.name).cmp(&(b.start_time, &b.name)));
    Ok(scenarios)
}

fn parse_scenario(name: &str, v: &Value) -> Result<Scenario> {
    let cfg = v
        .as_object()
        .ok_or_else(|| Error::config(format!("scenario {name}: expected a table")))?;
    let opts = ScenarioReader { name, table: cfg };
    let err = |opt: &str, e: String| opts.error(opt, e);
    let executor_name = cfg
        .get("executor")
        .and_then(Value::as_str)
        .ok_or_else(|| err("executor", "is required".into()))?;
    let executor = match ExecutorConfig::parse(executor_name, &opts)? {
        Some(e) => e,
        None if executor_name == "externally-controlled" => {
            return Err(err(
                "executor",
                "\"externally-controlled\" is not supported (k6 v2 removed it too)".into(),
            ))
        }
        None => {
            return Err(err(
                "executor",
                format!("unknown executor {executor_name:?}"),
            ))
        }
    };
    let string_map = |key: &str| -> Result<BTreeMap<String, String>> {
        match cfg.get(key) {
            None => Ok(BTreeMap::new()),
            Some(Value::Object(m)) => Ok(m
                .iter()
                .map(|(k, v)| (k.clone(), json_to_plain(v)))
                .collect()),
            Some(_) => Err(err(key, "expected a table of strings".into())),
        }
    };
    let scenario = Scenario {
        name: name.to_string(),
        executor,
        exec: cfg
            .get("exec")
            .and_then(Value::as_str)
            .unwrap_or("default")
            .to_string(),
        start_time: opts.duration("startTime", Some(Duration::ZERO))?,
        graceful_stop: opts.duration("gracefulStop", Some(DEFAULT_GRACE))?,
        env: string_map("env")?,
        tags: string_map("tags")?,
    };
    validate(&scenario)?;
    Ok(scenario)
}

fn json_to_plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn validate(s: &Scenario) -> Result<()> {
    s.executor
        .validate()
        .map_err(|(opt, why)| Error::config(format!("scenario {}: option {opt}: {why}", s.name)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scenario_errors_name_the_scenario_and_option() {
        let e = parse_scenarios(&json!({"a": {"executor": "constant-vus"}})).unwrap_err();
        assert_eq!(e.message, "scenario a: option duration: is required");
        let e = parse_scenarios(&json!({"b": {"executor": "nope"}})).unwrap_err();
        assert!(e.message.contains("unknown executor"));
    }
}
