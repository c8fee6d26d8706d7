//! `--out NAME[=ARGS]`, checked before the script runs: json and csv files, the web
//! dashboard (`--out web-dashboard[=k=v&k=v]` or `K6_WEB_DASHBOARD=true`) and Prometheus
//! remote write (`--out experimental-prometheus-rw`, configured by `K6_PROMETHEUS_RW_*`).

use crate::options::duration;
use std::time::Duration;

/// The outputs `--out` knows, in the order the error message lists them.
pub const OUTPUT_NAMES: &[&str] = &[
    "json",
    "csv",
    "web-dashboard",
    "experimental-prometheus-rw",
    "part",
];

#[derive(Debug, Clone, PartialEq)]
pub enum OutputSpec {
    Json(String),
    Csv(String),
    WebDashboard(DashboardConfig),
    PrometheusRw(PromConfig),
    /// The run's result part for `engine merge` (src/part/).
    Part(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct DashboardConfig {
    pub host: String,
    /// None: no HTTP server (k6's port -1), only the export.
    pub port: Option<u16>,
    /// How often the page gets an update (k6's aggregation period, default 10 s).
    pub period: Duration,
    /// Open a browser, and keep serving until it closes (k6's `open`).
    pub open: bool,
    /// Write the HTML report here at the end.
    pub export: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PromConfig {
    pub url: String,
    pub push_interval: Duration,
    pub trend_stats: Vec<String>,
    pub headers: Vec<(String, String)>,
    pub basic_auth: Option<(String, String)>,
    pub insecure_skip_tls_verify: bool,
    pub stale_markers: bool,
    /// Labels on every series (the engine's `ENGINE_PROMETHEUS_RW_LABELS=k:v,k:v`, e.g. one
    /// per pod of a split test).
    pub labels: Vec<(String, String)>,
}

/// Every output of the run: the `--out` flags, then `K6_WEB_DASHBOARD=true` if no flag
/// named the dashboard. `env` is how a variable is read (the process environment).
pub fn parse_all(
    flags: &[String],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<OutputSpec>, String> {
    let mut out = flags
        .iter()
        .map(|f| parse(f, env))
        .collect::<Result<Vec<_>, _>>()?;
    let dashboard_flag = out.iter().any(|o| matches!(o, OutputSpec::WebDashboard(_)));
    if !dashboard_flag && env("K6_WEB_DASHBOARD").is_some_and(|v| truthy(&v)) {
        out.push(OutputSpec::WebDashboard(dashboard(
            "K6_WEB_DASHBOARD=true",
            "",
            env,
        )?));
    }
    Ok(out)
}

/// One `--out` value.
pub fn parse(spec: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<OutputSpec, String> {
    let (name, arg) = match spec.split_once('=') {
        Some((n, a)) => (n, a),
        None => (spec, ""),
    };
    let file = |what: &str| {
        if arg.is_empty() {
            Err(format!("--out {spec}: expected {what}=FILE"))
        } else {
            Ok(arg.to_string())
        }
    };
    match name {
        "json" => Ok(OutputSpec::Json(file("json")?)),
        "csv" => Ok(OutputSpec::Csv(file("csv")?)),
        "part" => Ok(OutputSpec::Part(file("part")?)),
        "web-dashboard" => Ok(OutputSpec::WebDashboard(dashboard(
            &format!("--out {spec}"),
            arg,
            env,
        )?)),
        "experimental-prometheus-rw" => Ok(OutputSpec::PrometheusRw(prometheus(spec, arg, env)?)),
        other => Err(format!(
            "--out {spec}: unknown output {other:?}; the outputs are {}",
            OUTPUT_NAMES.join(", ")
        )),
    }
}

fn truthy(v: &str) -> bool {
    matches!(v.trim(), "true" | "1" | "yes")
}

fn bool_value(what: &str, v: &str) -> Result<bool, String> {
    match v.trim() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" | "" => Ok(false),
        other => Err(format!("{what}: expected true or false, got {other:?}")),
    }
}

/// The dashboard: `K6_WEB_DASHBOARD_*` variables, then the output's own `k=v&k=v` (wins).
fn dashboard(
    origin: &str,
    arg: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<DashboardConfig, String> {
    let mut cfg = DashboardConfig {
        host: "127.0.0.1".into(),
        port: Some(5665),
        period: Duration::from_secs(10),
        open: false,
        export: None,
    };
    let mut set = |key: &str, value: &str, what: &str| -> Result<(), String> {
        match key {
            "host" => cfg.host = value.to_string(),
            "port" => {
                cfg.port = match value.trim().parse::<i32>() {
                    Ok(-1) => None,
                    Ok(p) if (0..=65535).contains(&p) => Some(p as u16),
                    _ => {
                        return Err(format!(
                            "{what}: port {value:?} must be 0..65535, or -1 for no server"
                        ))
                    }
                }
            }
            "period" => {
                let p = duration::parse(value).map_err(|e| format!("{what}: period: {e}"))?;
                if p < Duration::from_millis(100) {
                    return Err(format!("{what}: period {value:?} is below 100ms"));
                }
                cfg.period = p;
            }
            "open" => cfg.open = bool_value(what, value)?,
            "export" => cfg.export = (!value.is_empty()).then(|| value.to_string()),
            other => {
                return Err(format!(
                    "{what}: unknown dashboard option {other:?} (host, port, period, open, export)"
                ))
            }
        }
        Ok(())
    };
    for key in ["host", "port", "period", "open", "export"] {
        let var = format!("K6_WEB_DASHBOARD_{}", key.to_uppercase());
        if let Some(v) = env(&var) {
            set(key, &v, &format!("environment variable {var}"))?;
        }
    }
    for pair in arg.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| format!("{origin}: expected key=value, got {pair:?}"))?;
        set(k, v, origin)?;
    }
    Ok(cfg)
}

/// Remote write: `K6_PROMETHEUS_RW_*` as k6 documents them; `--out
/// experimental-prometheus-rw=URL` also sets the URL.
fn prometheus(
    spec: &str,
    arg: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<PromConfig, String> {
    let var = |k: &str| env(&format!("K6_PROMETHEUS_RW_{k}"));
    let what = |k: &str| format!("environment variable K6_PROMETHEUS_RW_{k}");
    let url = if arg.is_empty() {
        var("SERVER_URL").unwrap_or_else(|| "http://localhost:9090/api/v1/write".into())
    } else {
        arg.to_string()
    };
    let parsed =
        url::Url::parse(&url).map_err(|e| format!("--out {spec}: server URL {url:?}: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!(
            "--out {spec}: server URL {url:?} must be http or https"
        ));
    }
    let push_interval = match var("PUSH_INTERVAL") {
        Some(v) => duration::parse(&v).map_err(|e| format!("{}: {e}", what("PUSH_INTERVAL")))?,
        None => Duration::from_secs(5),
    };
    if push_interval < Duration::from_millis(100) {
        return Err(format!("{}: at least 100ms", what("PUSH_INTERVAL")));
    }
    let trend_stats: Vec<String> = var("TREND_STATS")
        .unwrap_or_else(|| "p(99)".into())
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    for st in &trend_stats {
        if super::prom::stat_suffix(st).is_none() {
            return Err(format!(
                "{}: unknown stat {st:?} (count, sum, min, max, avg, med, p(N))",
                what("TREND_STATS")
            ));
        }
    }
    let mut headers = Vec::new();
    if let Some(list) = var("HTTP_HEADERS") {
        for pair in list.split(',').filter(|p| !p.trim().is_empty()) {
            let (k, v) = pair.split_once(':').ok_or_else(|| {
                format!("{}: expected key:value, got {pair:?}", what("HTTP_HEADERS"))
            })?;
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let mut labels = Vec::new();
    if let Some(list) = env("ENGINE_PROMETHEUS_RW_LABELS") {
        for pair in list.split(',').filter(|p| !p.trim().is_empty()) {
            let (k, v) = pair.split_once(':').ok_or_else(|| {
                format!("environment variable ENGINE_PROMETHEUS_RW_LABELS: expected key:value, got {pair:?}")
            })?;
            labels.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let basic_auth = match (var("USERNAME"), var("PASSWORD")) {
        (None, None) => None,
        (u, p) => Some((u.unwrap_or_default(), p.unwrap_or_default())),
    };
    let flag = |k: &str| -> Result<bool, String> {
        var(k).map_or(Ok(false), |v| bool_value(&what(k), &v))
    };
    Ok(PromConfig {
        url,
        push_interval,
        trend_stats,
        headers,
        basic_auth,
        insecure_skip_tls_verify: flag("INSECURE_SKIP_TLS_VERIFY")?,
        stale_markers: flag("STALE_MARKERS")?,
        labels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn unknown_outputs_name_the_ones_that_exist() {
        let e = parse("influxdb=http://x:8086/db", &env_of(&[])).unwrap_err();
        assert!(e.contains("unknown output \"influxdb\""), "{e}");
        assert!(
            e.contains("json, csv, web-dashboard, experimental-prometheus-rw, part"),
            "{e}"
        );
        assert!(parse("json", &env_of(&[]))
            .unwrap_err()
            .contains("json=FILE"));
    }

    #[test]
    fn dashboard_defaults_env_and_output_options() {
        let d = parse_all(&[], &env_of(&[("K6_WEB_DASHBOARD", "true")])).unwrap();
        assert_eq!(
            d,
            vec![OutputSpec::WebDashboard(DashboardConfig {
                host: "127.0.0.1".into(),
                port: Some(5665),
                period: Duration::from_secs(10),
                open: false,
                export: None,
            })]
        );
        let env = env_of(&[
            ("K6_WEB_DASHBOARD_PORT", "-1"),
            ("K6_WEB_DASHBOARD_PERIOD", "2s"),
        ]);
        let Ok(OutputSpec::WebDashboard(c)) = parse("web-dashboard=export=r.html&period=1s", &env)
        else {
            panic!()
        };
        assert_eq!(
            (c.port, c.period, c.export.as_deref()),
            (None, Duration::from_secs(1), Some("r.html"))
        );
        assert!(parse("web-dashboard=port=70000", &env_of(&[])).is_err());
        assert!(parse("web-dashboard=colour=red", &env_of(&[])).is_err());
    }

    #[test]
    fn prometheus_reads_k6_variables() {
        let env = env_of(&[
            (
                "K6_PROMETHEUS_RW_SERVER_URL",
                "http://127.0.0.1:9/api/v1/write",
            ),
            ("K6_PROMETHEUS_RW_PUSH_INTERVAL", "1s"),
            ("K6_PROMETHEUS_RW_TREND_STATS", "p(95),p(99.9),avg"),
            ("K6_PROMETHEUS_RW_HTTP_HEADERS", "X-Org:1, X-Team : load"),
            ("K6_PROMETHEUS_RW_USERNAME", "u"),
            ("K6_PROMETHEUS_RW_STALE_MARKERS", "true"),
        ]);
        let Ok(OutputSpec::PrometheusRw(c)) = parse("experimental-prometheus-rw", &env) else {
            panic!()
        };
        assert_eq!(c.url, "http://127.0.0.1:9/api/v1/write");
        assert_eq!(c.push_interval, Duration::from_secs(1));
        assert_eq!(c.trend_stats, ["p(95)", "p(99.9)", "avg"]);
        assert_eq!(c.headers[1], ("X-Team".into(), "load".into()));
        assert_eq!(c.basic_auth, Some(("u".into(), String::new())));
        assert!(c.stale_markers && !c.insecure_skip_tls_verify);
        let Ok(OutputSpec::PrometheusRw(d)) = parse("experimental-prometheus-rw", &env_of(&[]))
        else {
            panic!()
        };
        assert_eq!(
            (d.url.as_str(), d.trend_stats.as_slice()),
            (
                "http://localhost:9090/api/v1/write",
                &["p(99)".to_string()][..]
            )
        );
        let bad = env_of(&[("K6_PROMETHEUS_RW_TREND_STATS", "p95")]);
        assert!(parse("experimental-prometheus-rw", &bad)
            .unwrap_err()
            .contains("TREND_STATS"));
    }
}
