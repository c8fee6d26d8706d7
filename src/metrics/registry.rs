//! Metric identity: names, types and value kinds, registered once and used by id.

use std::collections::HashMap;
use std::sync::Mutex;

/// Index of a metric in the registry; what the hot path records against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MetricId(pub u32);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricType {
    Counter,
    Gauge,
    Rate,
    Trend,
}

impl MetricType {
    pub fn name(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Rate => "rate",
            MetricType::Trend => "trend",
        }
    }
}

/// k6's `contains`: what the values measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    Default,
    Time,
    Data,
}

impl ValueType {
    pub fn name(self) -> &'static str {
        match self {
            ValueType::Default => "default",
            ValueType::Time => "time",
            ValueType::Data => "data",
        }
    }
}

#[derive(Debug, Clone)]
pub struct MetricDef {
    pub name: String,
    pub kind: MetricType,
    pub contains: ValueType,
    pub builtin: bool,
}

/// All metrics of a run. Registration takes a lock (init code only); recording never does.
#[derive(Debug, Default)]
pub struct Registry {
    inner: Mutex<RegistryInner>,
}

#[derive(Debug, Default)]
struct RegistryInner {
    defs: Vec<MetricDef>,
    by_name: HashMap<String, MetricId>,
}

impl Registry {
    /// Registers `name`, or returns the existing id when the type matches (every worker runs
    /// the init code, so the same declaration arrives once per worker).
    pub fn register(
        &self,
        name: &str,
        kind: MetricType,
        contains: ValueType,
    ) -> Result<MetricId, String> {
        self.register_inner(name, kind, contains, false)
    }

    fn register_inner(
        &self,
        name: &str,
        kind: MetricType,
        contains: ValueType,
        builtin: bool,
    ) -> Result<MetricId, String> {
        if !valid_name(name) {
            return Err(format!(
                "invalid metric name {name:?}: use letters, digits and underscores, starting with a letter or underscore, at most 128 characters"
            ));
        }
        let mut inner = self
            .inner
            .lock()
            .expect("registry lock is never poisoned: no panics while held");
        if let Some(&id) = inner.by_name.get(name) {
            let def = &inner.defs[id.0 as usize];
            if def.kind != kind || (!builtin && def.builtin) {
                return Err(format!(
                    "metric {name:?} is already registered as a {} metric{}",
                    def.kind.name(),
                    if def.builtin { " (a built-in)" } else { "" }
                ));
            }
            return Ok(id);
        }
        let id = MetricId(inner.defs.len() as u32);
        inner.defs.push(MetricDef {
            name: name.to_string(),
            kind,
            contains,
            builtin,
        });
        inner.by_name.insert(name.to_string(), id);
        Ok(id)
    }

    pub fn get(&self, name: &str) -> Option<MetricId> {
        self.inner
            .lock()
            .expect("registry lock")
            .by_name
            .get(name)
            .copied()
    }

    pub fn def(&self, id: MetricId) -> MetricDef {
        self.inner.lock().expect("registry lock").defs[id.0 as usize].clone()
    }

    pub fn all(&self) -> Vec<MetricDef> {
        self.inner.lock().expect("registry lock").defs.clone()
    }
}

/// k6's metric name rule: `^[a-zA-Z_][a-zA-Z0-9_]{0,127}$`.
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && name.len() <= 128
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Ids of the built-in metrics, registered once at startup under k6's names.
#[derive(Debug, Clone, Copy)]
pub struct Builtins {
    pub vus: MetricId,
    pub vus_max: MetricId,
    pub iterations: MetricId,
    pub iteration_duration: MetricId,
    pub dropped_iterations: MetricId,
    pub data_sent: MetricId,
    pub data_received: MetricId,
    pub checks: MetricId,
    pub http_reqs: MetricId,
    pub http_req_duration: MetricId,
    pub http_req_waiting: MetricId,
    pub http_req_sending: MetricId,
    pub http_req_receiving: MetricId,
    pub http_req_blocked: MetricId,
    pub http_req_connecting: MetricId,
    pub http_req_tls_handshaking: MetricId,
    /// DNS lookup of a new connection (not in k6 v1; k6 folds it into blocked).
    pub http_req_looking_up: MetricId,
    pub http_req_failed: MetricId,
    pub group_duration: MetricId,
    /// How late each `sleep` woke up (the engine's own: the load generator's health).
    pub vu_sleep_lag: MetricId,
}

impl Builtins {
    pub fn register(r: &Registry) -> Builtins {
        use MetricType::*;
        use ValueType::*;
        let reg = |name: &str, k, c| {
            r.register_inner(name, k, c, true)
                .expect("built-in names are valid and unique")
        };
        Builtins {
            vus: reg("vus", Gauge, Default),
            vus_max: reg("vus_max", Gauge, Default),
            iterations: reg("iterations", Counter, Default),
            iteration_duration: reg("iteration_duration", Trend, Time),
            dropped_iterations: reg("dropped_iterations", Counter, Default),
            data_sent: reg("data_sent", Counter, Data),
            data_received: reg("data_received", Counter, Data),
            checks: reg("checks", Rate, Default),
            http_reqs: reg("http_reqs", Counter, Default),
            http_req_duration: reg("http_req_duration", Trend, Time),
            http_req_waiting: reg("http_req_waiting", Trend, Time),
            http_req_sending: reg("http_req_sending", Trend, Time),
            http_req_receiving: reg("http_req_receiving", Trend, Time),
            http_req_blocked: reg("http_req_blocked", Trend, Time),
            http_req_connecting: reg("http_req_connecting", Trend, Time),
            http_req_tls_handshaking: reg("http_req_tls_handshaking", Trend, Time),
            http_req_looking_up: reg("http_req_looking_up", Trend, Time),
            http_req_failed: reg("http_req_failed", Rate, Default),
            group_duration: reg("group_duration", Trend, Time),
            vu_sleep_lag: reg("vu_sleep_lag", Trend, Time),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_name_same_type_is_one_metric() {
        let r = Registry::default();
        let a = r
            .register("beacon_latency_ms", MetricType::Trend, ValueType::Default)
            .unwrap();
        let b = r
            .register("beacon_latency_ms", MetricType::Trend, ValueType::Default)
            .unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn clashes_and_bad_names_are_errors() {
        let r = Registry::default();
        Builtins::register(&r);
        r.register("x", MetricType::Rate, ValueType::Default)
            .unwrap();
        assert!(r
            .register("x", MetricType::Counter, ValueType::Default)
            .unwrap_err()
            .contains("rate"));
        assert!(r
            .register("http_reqs", MetricType::Counter, ValueType::Default)
            .unwrap_err()
            .contains("built-in"));
        assert!(r
            .register("1abc", MetricType::Counter, ValueType::Default)
            .is_err());
        assert!(r
            .register("a-b", MetricType::Counter, ValueType::Default)
            .is_err());
    }
}
