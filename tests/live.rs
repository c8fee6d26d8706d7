//! Live results end to end, on real components: Prometheus receives remote write and is
//! queried through its HTTP API; Chromium loads the live dashboard during a run and the
//! exported report from disk. Exact counts are compared with the run's summary export.

mod common;
mod components;
use common::{start_server, Workspace};
use components::{free_port, Browser, Prometheus, PAGE_PROBE};
use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const STEPS: [&str; 6] = [
    "website",
    "tutorial",
    "webinar",
    "contract",
    "congrats",
    "brand-steps",
];

/// A small funnel: every iteration posts a beacon per step it reaches (iteration i reaches
/// i % 6 + 1 steps), records a tagged Rate, Counter and Trend, and checks the answers.
fn funnel_script(url: &str, duration: &str) -> String {
    format!(
        r#"
local http = require "k6/http"
local k6 = require "k6"
local metrics = require "k6/metrics"
local steps = {{ "website", "tutorial", "webinar", "contract", "congrats", "brand-steps" }}
local entry = metrics.Rate("entry_success")
local beacons = metrics.Counter("beacons")
local think = metrics.Trend("think_ms", true)
options = {{
  vus = 3, duration = "{duration}",
  thresholds = {{ http_req_failed = {{ "rate<0.01" }}, entry_success = {{ "rate>0.99" }} }},
  funnel = {{ metric = "entry_success", tag = "page", steps = steps }},
}}
function default()
  local reach = __ITER % 6 + 1
  for i = 1, reach do
    local res = http.post("{url}", json.encode({{ page = steps[i] }}))
    entry:add(res.status == 200, {{ page = steps[i] }})
    beacons:add(1, {{ kind = i == 1 and "first" or "later" }})
    k6.check(res, {{ ["beacon accepted"] = function(r) return r.status == 200 end }})
  end
  think:add(__ITER % 10)
  k6.sleep(0.05)
end
"#
    )
}

#[test]
fn an_unknown_output_is_a_config_error_naming_the_outputs() {
    let ws = Workspace::new();
    ws.write("t.lua", "function default() end");
    let r = ws.run("t.lua", &["--out", "influxdb=http://127.0.0.1:8086/db"]);
    assert_eq!(r.code, 104, "stderr: {}", r.stderr);
    assert!(
        r.stderr
            .contains("json, csv, web-dashboard, experimental-prometheus-rw, part"),
        "{}",
        r.stderr
    );
    let r = ws.run_env("t.lua", &[], &[("K6_WEB_DASHBOARD_PORT", "x")]);
    assert_eq!(r.code, 0, "the port only matters with the dashboard on");
    let r = ws.run_env(
        "t.lua",
        &[],
        &[("K6_WEB_DASHBOARD", "true"), ("K6_WEB_DASHBOARD_PORT", "x")],
    );
    assert_eq!(r.code, 104, "stderr: {}", r.stderr);
    assert!(r.stderr.contains("K6_WEB_DASHBOARD_PORT"), "{}", r.stderr);
}

#[test]
fn prometheus_receives_every_request_and_the_scripts_metrics() {
    let Some(prom) = Prometheus::start() else {
        return;
    };
    let srv = start_server();
    let ws = Workspace::new();
    ws.write("t.lua", &funnel_script(&srv.url("/track"), "3s"));
    let url = prom.write_url();
    let r = ws.run_env(
        "t.lua",
        &["--out", "experimental-prometheus-rw"],
        &[
            ("K6_PROMETHEUS_RW_SERVER_URL", &url),
            ("K6_PROMETHEUS_RW_PUSH_INTERVAL", "1s"),
            ("K6_PROMETHEUS_RW_TREND_STATS", "p(99),count"),
        ],
    );
    assert_eq!(r.code, 0, "stderr: {}", r.stderr);
    assert!(!r.stderr.contains("dropped"), "{}", r.stderr);
    let sum = |q: &str| prom.query(q).iter().map(|(_, v)| v).sum::<f64>();
    let reqs = r.metric("http_reqs", "count");
    assert!(reqs > 20.0);
    assert_eq!(reqs, srv.count("/track") as f64);
    assert_eq!(sum("sum(k6_http_reqs_total)"), reqs);
    // The custom Counter, by tag.
    let first = sum(r#"k6_beacons_total{kind="first"}"#);
    let later = sum(r#"k6_beacons_total{kind="later"}"#);
    assert_eq!(first + later, r.metric("beacons", "count"));
    assert_eq!(first, r.metric("iterations", "count"));
    // The custom Rate, one series per page; all passed.
    let rates = prom.query("k6_entry_success_rate");
    let pages: Vec<&str> = rates
        .iter()
        .map(|(m, _)| m["page"].as_str().unwrap())
        .collect();
    for step in STEPS {
        assert!(pages.contains(&step), "{step} in {pages:?}");
    }
    assert!(rates.iter().all(|(_, v)| *v == 1.0));
    // Trend stats: seconds for time values, counts as counts, no url label.
    let p99 = prom.query("k6_http_req_duration_p99");
    assert!(!p99.is_empty());
    assert!(p99
        .iter()
        .all(|(m, v)| *v > 0.0 && *v < 1.0 && m["url"].is_null()));
    assert_eq!(sum("sum(k6_http_req_duration_count)"), reqs);
    let think = prom.query("k6_think_ms_p99");
    assert!(
        think.len() == 1 && think[0].1 <= 0.0091 && think[0].1 >= 0.0089,
        "{think:?}"
    );
}

#[test]
fn a_dead_receiver_costs_dropped_batches_not_the_run() {
    let srv = start_server();
    let ws = Workspace::new();
    ws.write("t.lua", &funnel_script(&srv.url("/track"), "1s"));
    let url = format!("http://127.0.0.1:{}/api/v1/write", free_port());
    let started = Instant::now();
    let r = ws.run_env(
        "t.lua",
        &["--out", "experimental-prometheus-rw"],
        &[
            ("K6_PROMETHEUS_RW_SERVER_URL", &url),
            ("K6_PROMETHEUS_RW_PUSH_INTERVAL", "500ms"),
        ],
    );
    assert_eq!(r.code, 0, "stderr: {}", r.stderr);
    assert_eq!(r.metric("http_reqs", "count"), srv.count("/track") as f64);
    assert!(
        r.stderr.contains("batches were dropped") && r.stderr.contains("connect"),
        "{}",
        r.stderr
    );
    assert!(started.elapsed() < Duration::from_secs(40));
}

fn probe(b: &mut Browser) -> Value {
    serde_json::from_str(b.eval(PAGE_PROBE).as_str().unwrap()).unwrap()
}

fn assert_drawn(page: &Value, charts: &[&str]) {
    for id in charts {
        let c = page["charts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == *id)
            .unwrap_or_else(|| panic!("no chart {id}: {page}"));
        assert!(
            c["points"].as_u64().unwrap() > 0,
            "{id} drew nothing: {page}"
        );
        assert!(
            c["w"].as_u64().unwrap() > 100 && c["h"].as_u64().unwrap() > 100,
            "{c}"
        );
    }
    let steps: Vec<&str> = page["funnel"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s[0].as_str().unwrap())
        .collect();
    assert_eq!(steps, STEPS, "{page}");
}

fn screenshot_path(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(name)
}

#[test]
fn the_live_dashboard_draws_during_the_run_and_does_not_hold_the_end() {
    if components::require("chromium").is_none() {
        return;
    }
    let srv = start_server();
    let ws = Workspace::new();
    let script = ws.write("t.lua", &funnel_script(&srv.url("/track"), "6s"));
    let port = free_port();
    let mut engine = Command::new(env!("CARGO_BIN_EXE_engine"))
        .args(["run", "-q"])
        .arg(&script)
        .env("K6_WEB_DASHBOARD", "true")
        .env("K6_WEB_DASHBOARD_PORT", port.to_string())
        .env("K6_WEB_DASHBOARD_PERIOD", "1s")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while components::http_get(port, "/").is_err() {
        assert!(Instant::now() < deadline, "dashboard never listened");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut b = Browser::open(&format!("http://127.0.0.1:{port}/")).unwrap();
    let drawn = b.wait_for(
        "document.body.dataset.loaded === 'live' && \
         Number((document.querySelector('[data-chart=http_reqs]') || {dataset: {}}).dataset.points || 0) >= 2 && \
         document.querySelectorAll('#funnel li').length === 6",
        Duration::from_secs(15),
    );
    let page = probe(&mut b);
    assert!(drawn, "{page}");
    assert_eq!(page["loaded"], "live");
    assert_drawn(
        &page,
        &[
            "vus",
            "http_reqs",
            "http_req_duration",
            "funnel_steps",
            "m_beacons",
        ],
    );
    assert_eq!(page["thresholds"], 2);
    b.screenshot(&screenshot_path("dashboard-live.png"));
    // The run ends on time with the browser still connected.
    let end = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = engine.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < end, "the run waited for the browser");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success());
    // After the end the page says so and shows the final counts.
    let done = b.wait_for(
        "document.body.dataset.done === 'true'",
        Duration::from_secs(5),
    );
    assert!(done, "{}", probe(&mut b));
}

#[test]
fn the_exported_report_opens_from_disk_with_every_panel() {
    if components::require("chromium").is_none() {
        return;
    }
    let srv = start_server();
    let ws = Workspace::new();
    ws.write("t.lua", &funnel_script(&srv.url("/track"), "4s"));
    let r = ws.run_env(
        "t.lua",
        &[
            "--out",
            "web-dashboard=port=-1&period=1s&export=report.html",
        ],
        &[],
    );
    assert_eq!(r.code, 0, "stderr: {}", r.stderr);
    let report = ws.path().join("report.html");
    let size = std::fs::metadata(&report).unwrap().len();
    assert!(size < 200_000, "report is {size} bytes");
    let mut b = Browser::open(&format!("file://{}", report.display())).unwrap();
    assert!(b.wait_for(
        "document.body.dataset.loaded === 'report'",
        Duration::from_secs(10)
    ));
    let page = probe(&mut b);
    assert_drawn(
        &page,
        &[
            "vus",
            "http_reqs",
            "http_req_duration",
            "phases",
            "funnel_steps",
            "m_think_ms",
        ],
    );
    // The funnel's counts are the run's: every entry_success sample, by page.
    let total: f64 = page["funnel"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s[1].as_f64().unwrap())
        .sum();
    let entries = r.metric("entry_success", "passes") + r.metric("entry_success", "fails");
    assert_eq!(total, entries, "{page}");
    assert_eq!(entries, srv.count("/track") as f64);
    let website = page["funnel"][0][1].as_f64().unwrap();
    assert_eq!(website, r.metric("iterations", "count"));
    assert_eq!(page["checks"], 1);
    b.screenshot(&screenshot_path("dashboard-report.png"));
}
