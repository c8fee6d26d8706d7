//! Scenarios and executor configurations, typed, with k6's option names and defaults.

use super::{count_value, duration, duration_value, ExecSettings};
use crate::error::{Error, Result};
use serde_json::Value;
use std::collections::BTreeMap;
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
        let target = super::parse_count_text(t)
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

/// An executor with its own options (k6 names in comments).
#[derive(Debug, Clone, PartialEq)]
pub enum ExecutorConfig {
    /// `shared-iterations`: `iterations` shared by `vus`, cut at `maxDuration`.
    SharedIterations {
        vus: u64,
        iterations: u64,
        max_duration: Duration,
    },
    /// `per-vu-iterations`: each of `vus` runs `iterations`, cut at `maxDuration`.
    PerVuIterations {
        vus: u64,
        iterations: u64,
        max_duration: Duration,
    },
    /// `constant-vus`: `vus` loop for `duration`.
    ConstantVus { vus: u64, duration: Duration },
    /// `ramping-vus`: from `startVUs` through `stages`; removed VUs get `gracefulRampDown`.
    RampingVus {
        start_vus: u64,
        stages: Vec<Stage>,
        graceful_ramp_down: Duration,
    },
    /// `constant-arrival-rate`: `rate` iterations per `timeUnit` for `duration` (open model).
    ConstantArrivalRate {
        rate: u64,
        time_unit: Duration,
        duration: Duration,
        pre_allocated_vus: u64,
        max_vus: u64,
    },
    /// `ramping-arrival-rate`: from `startRate` through `stages` (targets in iterations per
    /// `timeUnit`).
    RampingArrivalRate {
        start_rate: u64,
        time_unit: Duration,
        stages: Vec<Stage>,
        pre_allocated_vus: u64,
        max_vus: u64,
    },
}

impl ExecutorConfig {
    /// See [`super::Plan::scale`].
    pub fn scale(&mut self, time: f64, vus: f64) {
        let n = |x: &mut u64| {
            if *x > 0 {
                *x = ((*x as f64) * vus).round().max(1.0) as u64;
            }
        };
        // Targets are VUs or rates (load), durations are time.
        let scale_stages = |stages: &mut Vec<Stage>| {
            for st in stages {
                n(&mut st.target);
                st.duration = st.duration.div_f64(time);
            }
        };
        match self {
            ExecutorConfig::SharedIterations {
                vus: v,
                iterations,
                max_duration,
            } => {
                n(v);
                n(iterations);
                *iterations = (*iterations).max(*v);
                *max_duration = max_duration.div_f64(time);
            }
            ExecutorConfig::PerVuIterations {
                vus: v,
                max_duration,
                ..
            } => {
                n(v);
                *max_duration = max_duration.div_f64(time);
            }
            ExecutorConfig::ConstantVus { vus: v, duration } => {
                n(v);
                *duration = duration.div_f64(time);
            }
            ExecutorConfig::RampingVus {
                start_vus,
                stages,
                graceful_ramp_down,
            } => {
                n(start_vus);
                scale_stages(stages);
                *graceful_ramp_down = graceful_ramp_down.div_f64(time);
            }
            // Rates are load (scaled like VUs); timeUnit is time, so a faster clock raises
            // the rate per real second just as it shortens each iteration's sleeps.
            ExecutorConfig::ConstantArrivalRate {
                rate,
                time_unit,
                duration,
                pre_allocated_vus,
                max_vus,
            } => {
                n(rate);
                *time_unit = time_unit.div_f64(time);
                *duration = duration.div_f64(time);
                n(pre_allocated_vus);
                n(max_vus);
            }
            ExecutorConfig::RampingArrivalRate {
                start_rate,
                time_unit,
                stages,
                pre_allocated_vus,
                max_vus,
            } => {
                n(start_rate);
                *time_unit = time_unit.div_f64(time);
                scale_stages(stages);
                n(pre_allocated_vus);
                n(max_vus);
            }
        }
    }

    /// k6's executor name.
    pub fn name(&self) -> &'static str {
        match self {
            ExecutorConfig::SharedIterations { .. } => "shared-iterations",
            ExecutorConfig::PerVuIterations { .. } => "per-vu-iterations",
            ExecutorConfig::ConstantVus { .. } => "constant-vus",
            ExecutorConfig::RampingVus { .. } => "ramping-vus",
            ExecutorConfig::ConstantArrivalRate { .. } => "constant-arrival-rate",
            ExecutorConfig::RampingArrivalRate { .. } => "ramping-arrival-rate",
        }
    }

    pub fn max_vus(&self) -> u64 {
        match self {
            ExecutorConfig::SharedIterations { vus, .. }
            | ExecutorConfig::PerVuIterations { vus, .. }
            | ExecutorConfig::ConstantVus { vus, .. } => *vus,
            ExecutorConfig::RampingVus {
                start_vus, stages, ..
            } => stages
                .iter()
                .map(|s| s.target)
                .max()
                .unwrap_or(0)
                .max(*start_vus),
            ExecutorConfig::ConstantArrivalRate { max_vus, .. }
            | ExecutorConfig::RampingArrivalRate { max_vus, .. } => *max_vus,
        }
    }

    /// Scheduled duration without the graceful stop (ramp-down grace included for ramping-vus).
    pub fn max_duration(&self) -> Duration {
        match self {
            ExecutorConfig::SharedIterations { max_duration, .. }
            | ExecutorConfig::PerVuIterations { max_duration, .. } => *max_duration,
            ExecutorConfig::ConstantVus { duration, .. } => *duration,
            ExecutorConfig::RampingVus {
                stages,
                graceful_ramp_down,
                ..
            } => stages.iter().map(|s| s.duration).sum::<Duration>() + *graceful_ramp_down,
            ExecutorConfig::ConstantArrivalRate { duration, .. } => *duration,
            ExecutorConfig::RampingArrivalRate { stages, .. } => {
                stages.iter().map(|s| s.duration).sum()
            }
        }
    }

    /// One line like k6's scenario banner.
    pub fn describe(&self) -> String {
        match self {
            ExecutorConfig::SharedIterations {
                vus,
                iterations,
                max_duration,
            } => format!(
                "{iterations} iterations shared among {vus} VUs (maxDuration: {}",
                duration::format(*max_duration)
            ),
            ExecutorConfig::PerVuIterations {
                vus,
                iterations,
                max_duration,
            } => format!(
                "{iterations} iterations for each of {vus} VUs (maxDuration: {}",
                duration::format(*max_duration)
            ),
            ExecutorConfig::ConstantVus { vus, duration: d } => {
                format!("{vus} looping VUs for {} (", duration::format(*d))
            }
            ExecutorConfig::RampingVus {
                stages,
                graceful_ramp_down,
                ..
            } => format!(
                "Up to {} looping VUs for {} over {} stages (gracefulRampDown: {}",
                self.max_vus(),
                duration::format(stages.iter().map(|s| s.duration).sum()),
                stages.len(),
                duration::format(*graceful_ramp_down)
            ),
            ExecutorConfig::ConstantArrivalRate {
                rate,
                time_unit,
                duration: d,
                pre_allocated_vus,
                max_vus,
            } => format!(
                "{rate} iterations/{} for {} (maxVUs: {pre_allocated_vus}-{max_vus}",
                rate_unit(*time_unit),
                duration::format(*d)
            ),
            ExecutorConfig::RampingArrivalRate {
                start_rate,
                time_unit,
                stages,
                pre_allocated_vus,
                max_vus,
            } => format!(
                "Up to {}.00 iterations/{} for {} over {} stages (maxVUs: {pre_allocated_vus}-{max_vus}",
                stages.iter().map(|s| s.target).max().unwrap_or(0).max(*start_rate),
                rate_unit(*time_unit),
                duration::format(self.max_duration()),
                stages.len()
            ),
        }
    }
}

/// `s` for a one-second time unit, else the unit itself (k6 prints "10.00 iterations/s").
fn rate_unit(unit: Duration) -> String {
    if unit == Duration::from_secs(1) {
        "s".into()
    } else {
        duration::format(unit)
    }
}

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

const DEFAULT_GRACE: Duration = Duration::from_secs(30);
const DEFAULT_MAX_DURATION: Duration = Duration::from_secs(600);

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
        ExecutorConfig::SharedIterations {
            vus: vus.unwrap_or(1),
            iterations,
            max_duration: s.duration.unwrap_or(DEFAULT_MAX_DURATION),
        }
    } else if let Some(duration) = s.duration {
        if s.stages.is_some() {
            return Err(conflict("duration", "stages"));
        }
        if duration.is_zero() {
            return Err(Error::config(
                "option duration: must be greater than 0 (use iterations for a fixed count)",
            ));
        }
        ExecutorConfig::ConstantVus {
            vus: vus.unwrap_or(1),
            duration,
        }
    } else if let Some(stages) = s.stages {
        ExecutorConfig::RampingVus {
            start_vus: vus.unwrap_or(1),
            stages,
            graceful_ramp_down: DEFAULT_GRACE,
        }
    } else {
        ExecutorConfig::PerVuIterations {
            vus: 1,
            iterations: 1,
            max_duration: DEFAULT_MAX_DURATION,
        }
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
    let err = |opt: &str, e: String| Error::config(format!("scenario {name}: option {opt}: {e}"));
    let dur = |key: &str, default: Option<Duration>| -> Result<Duration> {
        match (cfg.get(key), default) {
            (Some(v), _) => duration_value(v).map_err(|e| err(key, e)),
            (None, Some(d)) => Ok(d),
            (None, None) => Err(err(key, "is required".into())),
        }
    };
    let count = |key: &str, default: Option<u64>| -> Result<u64> {
        match (cfg.get(key), default) {
            (Some(v), _) => count_value(v).map_err(|e| err(key, e)),
            (None, Some(d)) => Ok(d),
            (None, None) => Err(err(key, "is required".into())),
        }
    };
    let executor_name = cfg
        .get("executor")
        .and_then(Value::as_str)
        .ok_or_else(|| err("executor", "is required".into()))?;
    let executor = match executor_name {
        "shared-iterations" => ExecutorConfig::SharedIterations {
            vus: count("vus", Some(1))?,
            iterations: count("iterations", Some(1))?,
            max_duration: dur("maxDuration", Some(DEFAULT_MAX_DURATION))?,
        },
        "per-vu-iterations" => ExecutorConfig::PerVuIterations {
            vus: count("vus", Some(1))?,
            iterations: count("iterations", Some(1))?,
            max_duration: dur("maxDuration", Some(DEFAULT_MAX_DURATION))?,
        },
        "constant-vus" => ExecutorConfig::ConstantVus {
            vus: count("vus", Some(1))?,
            duration: dur("duration", None)?,
        },
        "ramping-vus" => ExecutorConfig::RampingVus {
            start_vus: count("startVUs", Some(1))?,
            stages: Stage::list_from_json(
                cfg.get("stages")
                    .ok_or_else(|| err("stages", "is required".into()))?,
                &format!("scenario {name}: option stages"),
            )?,
            graceful_ramp_down: dur("gracefulRampDown", Some(DEFAULT_GRACE))?,
        },
        "constant-arrival-rate" => {
            let pre_allocated_vus = count("preAllocatedVUs", None)?;
            ExecutorConfig::ConstantArrivalRate {
                rate: count("rate", None)?,
                time_unit: dur("timeUnit", Some(Duration::from_secs(1)))?,
                duration: dur("duration", None)?,
                pre_allocated_vus,
                max_vus: count("maxVUs", Some(pre_allocated_vus))?,
            }
        }
        "ramping-arrival-rate" => {
            let pre_allocated_vus = count("preAllocatedVUs", None)?;
            ExecutorConfig::RampingArrivalRate {
                start_rate: count("startRate", Some(0))?,
                time_unit: dur("timeUnit", Some(Duration::from_secs(1)))?,
                stages: Stage::list_from_json(
                    cfg.get("stages")
                        .ok_or_else(|| err("stages", "is required".into()))?,
                    &format!("scenario {name}: option stages"),
                )?,
                pre_allocated_vus,
                max_vus: count("maxVUs", Some(pre_allocated_vus))?,
            }
        }
        "externally-controlled" => {
            return Err(err(
                "executor",
                "\"externally-controlled\" is not supported (k6 v2 removed it too)".into(),
            ))
        }
        other => return Err(err("executor", format!("unknown executor {other:?}"))),
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
        start_time: dur("startTime", Some(Duration::ZERO))?,
        graceful_stop: dur("gracefulStop", Some(DEFAULT_GRACE))?,
        env: string_map("env")?,
        tags: string_map("tags")?,
    };
    validate(&scenario)?;
    Ok(scenario)
}

/// Checks shared by the arrival-rate executors: the failing option and why.
fn validate_arrival(time_unit: Duration, pre: u64, max: u64) -> Option<(&'static str, String)> {
    if time_unit.is_zero() {
        return Some(("timeUnit", "must be greater than 0".into()));
    }
    if max < pre {
        return Some((
            "maxVUs",
            format!("must be at least preAllocatedVUs ({pre}), got {max}"),
        ));
    }
    if max == 0 {
        return Some(("maxVUs", "must be at least 1".into()));
    }
    None
}

fn json_to_plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn validate(s: &Scenario) -> Result<()> {
    let bad = |opt: &str, why: &str| {
        Err(Error::config(format!(
            "scenario {}: option {opt}: {why}",
            s.name
        )))
    };
    match &s.executor {
        ExecutorConfig::SharedIterations {
            vus, iterations, ..
        } => {
            if *vus == 0 {
                return bad("vus", "must be at least 1");
            }
            if iterations < vus {
                return bad("iterations", "must be at least the number of VUs");
            }
        }
        ExecutorConfig::PerVuIterations {
            vus, iterations, ..
        } => {
            if *vus == 0 {
                return bad("vus", "must be at least 1");
            }
            if *iterations == 0 {
                return bad("iterations", "must be at least 1");
            }
        }
        ExecutorConfig::ConstantVus { vus, duration } => {
            if *vus == 0 {
                return bad("vus", "must be at least 1");
            }
            if duration.is_zero() {
                return bad("duration", "must be greater than 0");
            }
        }
        ExecutorConfig::RampingVus { stages, .. } => {
            if stages.is_empty() {
                return bad("stages", "at least one stage is required");
            }
        }
        ExecutorConfig::ConstantArrivalRate {
            rate,
            time_unit,
            duration,
            pre_allocated_vus,
            max_vus,
        } => {
            if *rate == 0 {
                return bad("rate", "must be greater than 0");
            }
            if duration.is_zero() {
                return bad("duration", "must be greater than 0");
            }
            validate_arrival(*time_unit, *pre_allocated_vus, *max_vus)
                .map_or(Ok(()), |(opt, why)| bad(opt, &why))?;
        }
        ExecutorConfig::RampingArrivalRate {
            time_unit,
            stages,
            pre_allocated_vus,
            max_vus,
            ..
        } => {
            if stages.is_empty() {
                return bad("stages", "at least one stage is required");
            }
            if stages.iter().all(|s| s.duration.is_zero()) {
                return bad("stages", "the stages must last longer than 0s");
            }
            validate_arrival(*time_unit, *pre_allocated_vus, *max_vus)
                .map_or(Ok(()), |(opt, why)| bad(opt, &why))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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

    #[test]
    fn scenario_errors_name_the_scenario_and_option() {
        let e = parse_scenarios(&json!({"a": {"executor": "constant-vus"}})).unwrap_err();
        assert_eq!(e.message, "scenario a: option duration: is required");
        let e = parse_scenarios(&json!({"b": {"executor": "nope"}})).unwrap_err();
        assert!(e.message.contains("unknown executor"));
    }
}
