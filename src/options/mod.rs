//! The test plan model: options, scenarios, stages, and the one precedence function.
//!
//! Owns turning the script's `options` (already converted to JSON), the environment map and
//! the CLI's raw values into one validated [`Plan`]. It does no I/O and knows nothing of Lua.

pub mod duration;
mod net;
pub mod reader;
mod scenario;
mod stage;
mod values;

pub use crate::exec::executors::ExecutorConfig;
pub use net::NetOptions;
pub use scenario::Scenario;
pub use stage::Stage;
pub use values::{count_value, duration_value, parse_count_text, parse_size};

use crate::error::{Error, Result};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

/// Execution settings of one configuration tier (script, env or CLI). `None` = not given.
#[derive(Debug, Default, Clone)]
pub struct ExecSettings {
    pub vus: Option<u64>,
    pub duration: Option<Duration>,
    pub iterations: Option<u64>,
    pub stages: Option<Vec<Stage>>,
    pub scenarios: Option<Value>,
}

impl ExecSettings {
    fn sets_shape(&self) -> bool {
        self.duration.is_some()
            || self.iterations.is_some()
            || self.stages.is_some()
            || self.scenarios.is_some()
    }

    /// k6's `Options.Apply`: a tier that sets any of duration, iterations, stages or scenarios
    /// replaces all four of the tiers below it; `vus` alone merges.
    fn apply(self, higher: ExecSettings) -> ExecSettings {
        let base = if higher.sets_shape() {
            ExecSettings {
                vus: self.vus,
                ..Default::default()
            }
        } else {
            self
        };
        ExecSettings {
            vus: higher.vus.or(base.vus),
            duration: higher.duration.or(base.duration),
            iterations: higher.iterations.or(base.iterations),
            stages: higher.stages.or(base.stages),
            scenarios: higher.scenarios.or(base.scenarios),
        }
    }
}

/// Run-wide settings that are not part of the scenario shape.
#[derive(Debug, Clone)]
pub struct Plan {
    pub scenarios: Vec<Scenario>,
    /// Threshold expressions exactly as written, per metric key (e.g. `http_req_duration{status:200}`).
    pub thresholds: BTreeMap<String, Vec<Value>>,
    pub setup_timeout: Duration,
    pub teardown_timeout: Duration,
    pub summary_trend_stats: Vec<String>,
    pub no_connection_reuse: bool,
    pub no_vu_connection_reuse: bool,
    pub no_cookies_reset: bool,
    /// k6's `throw`: failed requests raise an error in the script instead of returning.
    pub throw: bool,
    /// k6's `maxRedirects`; `None` follows k6's default of 10 and warns when it stops.
    pub max_redirects: Option<u32>,
    pub discard_response_bodies: bool,
    pub user_agent: String,
    pub net: NetOptions,
    /// Which tier overrode the script's scenario shape, for k6's warning.
    pub shape_overridden_by: Option<&'static str>,
    /// Top-level option names the engine does not know (k6 warns about them too), each
    /// with the nearest known name when there is one.
    pub unknown_options: Vec<String>,
}

impl Plan {
    /// The largest number of VUs the plan can have at once (for `vus_max` and pre-checks).
    pub fn max_vus(&self) -> u64 {
        self.scenarios.iter().map(|s| s.executor.max_vus()).sum()
    }

    /// The VUs an execution segment of the plan can have at once.
    pub fn max_vus_in(&self, segment: crate::exec::Segment) -> u64 {
        self.scenarios
            .iter()
            .map(|s| segment.scale(s.executor.max_vus()))
            .sum()
    }

    /// Shrinks or grows a plan to try a big profile small (`--time-scale`, `--vu-scale`):
    /// every duration (stages, startTime, gracefulStop, gracefulRampDown, maxDuration,
    /// duration) is divided by `time`, every VU count multiplied by `vus` (at least 1
    /// where it was at least 1). Sleeps are scaled by the VU driver with the same factor.
    pub fn scale(&mut self, time: f64, vus: f64) {
        for s in &mut self.scenarios {
            s.start_time = s.start_time.div_f64(time);
            s.graceful_stop = s.graceful_stop.div_f64(time);
            s.executor.scale(time, vus);
        }
    }

    /// The resolved plan in k6's option names, as `engine inspect` prints it.
    pub fn to_json(&self) -> Value {
        let d = |x: Duration| Value::String(duration::format(x));
        let mut scenarios = serde_json::Map::new();
        for s in &self.scenarios {
            let mut m = serde_json::Map::new();
            s.executor.to_json(&mut m);
            m.insert("exec".into(), s.exec.clone().into());
            m.insert("startTime".into(), d(s.start_time));
            m.insert("gracefulStop".into(), d(s.graceful_stop));
            if !s.env.is_empty() {
                m.insert(
                    "env".into(),
                    serde_json::to_value(&s.env).unwrap_or_default(),
                );
            }
            if !s.tags.is_empty() {
                m.insert(
                    "tags".into(),
                    serde_json::to_value(&s.tags).unwrap_or_default(),
                );
            }
            scenarios.insert(s.name.clone(), Value::Object(m));
        }
        serde_json::json!({
            "scenarios": scenarios,
            "thresholds": self.thresholds,
            "setupTimeout": duration::format(self.setup_timeout),
            "teardownTimeout": duration::format(self.teardown_timeout),
            "summaryTrendStats": self.summary_trend_stats,
            "discardResponseBodies": self.discard_response_bodies,
            "noConnectionReuse": self.no_connection_reuse,
            "noCookiesReset": self.no_cookies_reset,
            "throw": self.throw,
            "maxRedirects": self.max_redirects,
            "userAgent": self.user_agent,
        })
    }

    /// The longest time the plan can take, graceful stops included.
    pub fn max_duration(&self) -> Duration {
        self.scenarios
            .iter()
            .map(|s| s.start_time + s.executor.max_duration() + s.graceful_stop)
            .max()
            .unwrap_or_default()
    }
}

/// Builds the plan. Precedence, lowest first: defaults < script `options` < `K6_*` env < CLI.
pub fn consolidate(
    script: &Value,
    env: &BTreeMap<String, String>,
    cli: ExecSettings,
) -> Result<Plan> {
    let script_obj = match script {
        Value::Object(m) => m.clone(),
        Value::Null => serde_json::Map::new(),
        other => {
            return Err(Error::config(format!(
                "options: expected a table of k6 options, got {other}"
            )))
        }
    };
    let script_tier = script_settings(&script_obj)?;
    let env_tier = env_settings(env)?;
    let shape_overridden_by = if script_tier.sets_shape() && cli.sets_shape() {
        Some("cli")
    } else if script_tier.sets_shape() && env_tier.sets_shape() {
        Some("env")
    } else {
        None
    };
    let merged = script_tier.apply(env_tier).apply(cli);
    let scenarios = scenario::from_settings(merged)?;
    let thresholds = parse_thresholds(script_obj.get("thresholds"))?;
    let get_dur = |key: &str, default: Duration| -> Result<Duration> {
        match script_obj.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(v) => duration_value(v).map_err(|e| Error::config(format!("option {key}: {e}"))),
        }
    };
    let get_bool = |key: &str, env_key: &str| -> bool {
        match env.get(env_key) {
            Some(v) => v == "true" || v == "1",
            None => script_obj
                .get(key)
                .and_then(Value::as_bool)
                .unwrap_or(false),
        }
    };
    let summary_trend_stats = match script_obj.get("summaryTrendStats") {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_str().map(String::from))
            .collect(),
        _ => ["avg", "min", "med", "max", "p(90)", "p(95)"]
            .map(String::from)
            .to_vec(),
    };
    Ok(Plan {
        scenarios,
        thresholds,
        setup_timeout: get_dur("setupTimeout", Duration::from_secs(60))?,
        teardown_timeout: get_dur("teardownTimeout", Duration::from_secs(60))?,
        summary_trend_stats,
        no_connection_reuse: get_bool("noConnectionReuse", "K6_NO_CONNECTION_REUSE"),
        no_vu_connection_reuse: get_bool("noVUConnectionReuse", "K6_NO_VU_CONNECTION_REUSE"),
        no_cookies_reset: get_bool("noCookiesReset", "K6_NO_COOKIES_RESET"),
        throw: get_bool("throw", "K6_THROW"),
        max_redirects: max_redirects(&script_obj, env)?,
        discard_response_bodies: get_bool("discardResponseBodies", "K6_DISCARD_RESPONSE_BODIES"),
        user_agent: script_obj
            .get("userAgent")
            .and_then(Value::as_str)
            .map(String::from)
            .unwrap_or_else(|| format!("engine/{}", env!("CARGO_PKG_VERSION"))),
        net: net::from_script(&script_obj, env)?,
        shape_overridden_by,
        unknown_options: unknown_options(&script_obj),
    })
}

/// k6's option names (the ones the engine acts on and the ones it accepts as k6 does).
const KNOWN_OPTIONS: &[&str] = &[
    "vus",
    "duration",
    "iterations",
    "stages",
    "scenarios",
    "thresholds",
    "setupTimeout",
    "teardownTimeout",
    "summaryTrendStats",
    "summaryTimeUnit",
    "noConnectionReuse",
    "noVUConnectionReuse",
    "noCookiesReset",
    "discardResponseBodies",
    "userAgent",
    "throw",
    "maxRedirects",
    "insecureSkipTLSVerify",
    "tlsVersion",
    "tlsAuth",
    "tlsCipherSuites",
    "hosts",
    "h2c",
    "batch",
    "batchPerHost",
    "rps",
    "dns",
    "blockHostnames",
    "blacklistIPs",
    "localIPs",
    "httpDebug",
    "minIterationDuration",
    "executionSegment",
    "executionSegmentSequence",
    "tags",
    "systemTags",
    "noSetup",
    "noTeardown",
    "paused",
    "linger",
    "noUsageReport",
    "cloud",
    "ext",
    "noThresholds",
    "noSummary",
    "noColor",
    "consoleOutput",
    "webDashboard",
    // The engine's own: the dashboard's funnel panel (src/live/state.rs).
    "funnel",
];

/// Warnings for top-level option names nobody reads.
fn unknown_options(script: &serde_json::Map<String, Value>) -> Vec<String> {
    script
        .keys()
        .filter(|k| !KNOWN_OPTIONS.contains(&k.as_str()))
        .map(|k| match reader::nearest(k, KNOWN_OPTIONS) {
            Some(near) => format!("unknown option {k:?} is ignored (did you mean {near:?}?)"),
            None => format!("unknown option {k:?} is ignored"),
        })
        .collect()
}

/// `maxRedirects` (script) or `K6_MAX_REDIRECTS` (environment, wins).
fn max_redirects(
    script: &serde_json::Map<String, Value>,
    env: &BTreeMap<String, String>,
) -> Result<Option<u32>> {
    let bad = |what: &str, e: String| Error::config(format!("{what}: {e}"));
    let n = match env.get("K6_MAX_REDIRECTS") {
        Some(v) => {
            Some(parse_count_text(v).map_err(|e| bad("environment variable K6_MAX_REDIRECTS", e))?)
        }
        None => match script.get("maxRedirects") {
            None | Some(Value::Null) => None,
            Some(v) => Some(count_value(v).map_err(|e| bad("option maxRedirects", e))?),
        },
    };
    Ok(n.map(|n| n.min(u32::MAX as u64) as u32))
}

fn script_settings(obj: &serde_json::Map<String, Value>) -> Result<ExecSettings> {
    let opt = |key: &str| obj.get(key).filter(|v| !v.is_null());
    Ok(ExecSettings {
        vus: opt("vus")
            .map(|v| count_value(v).map_err(|e| Error::config(format!("option vus: {e}"))))
            .transpose()?,
        duration: opt("duration")
            .map(|v| duration_value(v).map_err(|e| Error::config(format!("option duration: {e}"))))
            .transpose()?,
        iterations: opt("iterations")
            .map(|v| count_value(v).map_err(|e| Error::config(format!("option iterations: {e}"))))
            .transpose()?,
        stages: opt("stages")
            .map(|v| Stage::list_from_json(v, "stages"))
            .transpose()?,
        scenarios: opt("scenarios").cloned(),
    })
}

fn env_settings(env: &BTreeMap<String, String>) -> Result<ExecSettings> {
    let parse_count = |key: &str| -> Result<Option<u64>> {
        env.get(key)
            .map(|v| {
                parse_count_text(v)
                    .map_err(|e| Error::config(format!("environment variable {key}: {e}")))
            })
            .transpose()
    };
    Ok(ExecSettings {
        vus: parse_count("K6_VUS")?,
        duration: env
            .get("K6_DURATION")
            .map(|v| {
                duration::parse(v)
                    .map_err(|e| Error::config(format!("environment variable K6_DURATION: {e}")))
            })
            .transpose()?,
        iterations: parse_count("K6_ITERATIONS")?,
        stages: env
            .get("K6_STAGES")
            .map(|v| {
                v.split(',')
                    .map(|s| Stage::parse_cli(s.trim()))
                    .collect::<Result<Vec<_>>>()
            })
            .transpose()?,
        scenarios: None,
    })
}

fn parse_thresholds(v: Option<&Value>) -> Result<BTreeMap<String, Vec<Value>>> {
    let mut out = BTreeMap::new();
    let Some(v) = v else { return Ok(out) };
    let Some(obj) = v.as_object() else {
        return Err(Error::config(
            "option thresholds: expected a table of metric = { expressions }",
        ));
    };
    for (metric, list) in obj {
        let items = match list {
            Value::Array(items) => items.clone(),
            // k6 refuses a bare string or object too (exit 104).
            other => {
                return Err(Error::config(format!(
                    "threshold {metric}: expected a list of expressions like {{ \"p(95)<500\" }}, got {other}"
                )))
            }
        };
        out.insert(metric.clone(), items);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn env() -> BTreeMap<String, String> {
        BTreeMap::new()
    }

    #[test]
    fn cli_duration_replaces_script_stages() {
        let script = json!({"stages": [{"duration": "1m", "target": 10}]});
        let cli = ExecSettings {
            vus: Some(5),
            duration: Some(Duration::from_secs(3)),
            ..Default::default()
        };
        let plan = consolidate(&script, &env(), cli).unwrap();
        assert_eq!(plan.scenarios.len(), 1);
        assert!(matches!(
            plan.scenarios[0].executor,
            ExecutorConfig::ConstantVus(crate::exec::executors::ConstantVus { vus: 5, .. })
        ));
        assert_eq!(plan.shape_overridden_by, Some("cli"));
    }

    #[test]
    fn vus_alone_merges_with_script_iterations() {
        let script = json!({"iterations": 10});
        let cli = ExecSettings {
            vus: Some(2),
            ..Default::default()
        };
        let plan = consolidate(&script, &env(), cli).unwrap();
        assert!(matches!(
            plan.scenarios[0].executor,
            ExecutorConfig::SharedIterations(crate::exec::executors::SharedIterations {
                vus: 2,
                iterations: 10,
                ..
            })
        ));
    }

    #[test]
    fn env_sits_between_script_and_cli() {
        let mut e = env();
        e.insert("K6_VUS".into(), "7".into());
        let plan = consolidate(
            &json!({"vus": 3, "duration": "5s"}),
            &e,
            ExecSettings::default(),
        )
        .unwrap();
        assert!(matches!(
            plan.scenarios[0].executor,
            ExecutorConfig::ConstantVus(crate::exec::executors::ConstantVus { vus: 7, .. })
        ));
        let cli = ExecSettings {
            vus: Some(9),
            ..Default::default()
        };
        let plan = consolidate(&json!({"vus": 3, "duration": "5s"}), &e, cli).unwrap();
        assert!(matches!(
            plan.scenarios[0].executor,
            ExecutorConfig::ConstantVus(crate::exec::executors::ConstantVus { vus: 9, .. })
        ));
    }

    #[test]
    fn no_options_is_one_iteration_of_one_vu() {
        let plan = consolidate(&json!({}), &env(), ExecSettings::default()).unwrap();
        assert!(matches!(
            plan.scenarios[0].executor,
            ExecutorConfig::PerVuIterations(crate::exec::executors::PerVuIterations {
                vus: 1,
                iterations: 1,
                ..
            })
        ));
    }

    #[test]
    fn negative_vus_is_a_config_error() {
        let err = consolidate(
            &json!({"vus": -3, "duration": "1s"}),
            &env(),
            ExecSettings::default(),
        )
        .unwrap_err();
        assert!(err.message.contains("vus"), "{}", err.message);
    }
}
