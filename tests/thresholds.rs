//! Thresholds end to end: every form passes and fails when it should, exit 99, abortOnFail.

mod common;
use common::{start_server, Workspace};

#[test]
fn trend_fed_known_values_gives_known_percentiles_and_verdicts() {
    let ws = Workspace::new();
    ws.write(
        "t.lua",
        r#"
local t = Trend("known")
options = { thresholds = {
  known = { "p(95)<96", "med<=50.1", "avg==50.5", "min>=1", "max<100" },
} }
function default() for v = 1, 100 do t:add(v) end end
"#,
    );
    let r = ws.run("t.lua", &[]);
    assert_eq!(r.code, 99, "max<100 fails: {}", r.stderr);
    let m = &r.summary["metrics"]["known"];
    assert!((m["p(95)"].as_f64().unwrap() - 95.0).abs() < 0.1, "{m}");
    assert!((m["med"].as_f64().unwrap() - 50.0).abs() < 0.06, "{m}");
    assert_eq!(m["avg"], 50.5);
    assert_eq!(m["thresholds"]["p(95)<96"], false);
    assert_eq!(m["thresholds"]["avg==50.5"], false);
    assert_eq!(
        m["thresholds"]["max<100"], true,
        "legacy export: true means failed"
    );
    assert!(r.stderr.contains("known"), "{}", r.stderr);
}

#[test]
fn sub_metric_rate_and_counter_thresholds() {
    let srv = start_server();
    let ws = Workspace::new();
    ws.write(
        "t.lua",
        &format!(
            r#"
local lat = Trend("beacon_latency_ms")
options = {{
  iterations = 4,
  thresholds = {{
    ["http_reqs{{status:404}}"] = {{ "count==4" }},
    ["http_reqs{{status:200}}"] = {{ "count==4" }},
    ["beacon_latency_ms{{type:heartbeat}}"] = {{ "max<10" }},
    ["beacon_latency_ms{{type:enter}}"] = {{ "min>=100" }},
    http_req_failed = {{ "rate==0.5" }},
    checks = {{ "rate>0.7" }},
    iterations = {{ "count>=4", "rate>0" }},
  }},
}}
function default()
  http.get("{ok}")
  http.get("{nf}")
  lat:add(5, {{ type = "heartbeat" }})
  lat:add(150, {{ type = "enter" }})
  check(1, {{ a = function() return true end, b = function() return __ITER ~= 0 end }})
end
"#,
            ok = srv.url("/ok"),
            nf = srv.url("/status/404")
        ),
    );
    let r = ws.run("t.lua", &["--vus", "1"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.summary["metrics"]["http_reqs{status:404}"]["count"], 4.0);
    assert_eq!(
        r.summary["metrics"]["beacon_latency_ms{type:heartbeat}"]["max"],
        5.0
    );
    // the same run, now with one failing sub-metric threshold
    let script = std::fs::read_to_string(ws.path().join("t.lua"))
        .unwrap()
        .replace("max<10", "max<5");
    ws.write("t2.lua", &script);
    let r = ws.run("t2.lua", &["--vus", "1"]);
    assert_eq!(r.code, 99, "{}", r.stderr);
    assert_eq!(
        r.summary["metrics"]["beacon_latency_ms{type:heartbeat}"]["thresholds"]["max<5"],
        true
    );
}

#[test]
fn summary_marks_thresholds_and_no_thresholds_skips_them() {
    let ws = Workspace::new();
    ws.write("t.lua", "local r = Rate('ok_rate')\noptions = { thresholds = { ok_rate = { 'rate>0.99' } } }\nfunction default() r:add(false) end\n");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_engine"))
        .current_dir(ws.path())
        .args(["run", "-q", "t.lua"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(99));
    assert!(
        stdout.contains("█ THRESHOLDS") && stdout.contains("✗ 'rate>0.99' rate=0.00%"),
        "{stdout}"
    );
    let r = ws.run("t.lua", &["--no-thresholds"]);
    assert_eq!(r.code, 0);
}

#[test]
fn abort_on_fail_stops_the_run_early_with_99() {
    let ws = Workspace::new();
    ws.write(
        "t.lua",
        r#"
local r = Rate("ok_rate")
options = { vus = 2, duration = "60s", thresholds = {
  ok_rate = { { threshold = "rate>0.99", abortOnFail = true, delayAbortEval = "1s" } },
} }
function default() r:add(false) sleep(0.05) end
"#,
    );
    let started = std::time::Instant::now();
    let r = ws.run("t.lua", &[]);
    assert_eq!(r.code, 99, "{}", r.stderr);
    assert!(
        started.elapsed().as_secs() < 15,
        "abortOnFail did not stop the 60s run"
    );
    assert!(r.stderr.contains("abortOnFail"), "{}", r.stderr);
}

#[test]
fn malformed_or_unknown_thresholds_are_config_errors_before_the_test() {
    let ws = Workspace::new();
    for (th, needle) in [
        ("http_req_duration = { 'p95<3000' }", "unknown aggregation"),
        ("nope_metric = { 'rate<1' }", "unknown metric"),
        (
            "http_req_duration = { 'rate<1' }",
            "cannot apply to a trend",
        ),
        ("['http_req_duration{status}'] = { 'p(95)<1' }", "key:value"),
        ("http_req_failed = { 'rate<abc' }", "not a number"),
    ] {
        ws.write("t.lua", &format!("options = {{ thresholds = {{ {th} }} }}\nfunction default() error('must not run') end\n"));
        let r = ws.run("t.lua", &[]);
        assert_eq!(r.code, 104, "{th}: {}", r.stderr);
        assert!(r.stderr.contains(needle), "{th}: {}", r.stderr);
        assert!(
            !r.stderr.contains("must not run"),
            "ran anyway: {}",
            r.stderr
        );
    }
}

#[test]
fn handle_summary_gets_k6_data_and_writes_its_outputs() {
    let srv = start_server();
    let ws = Workspace::new();
    ws.write(
        "t.lua",
        &format!(
            r#"
options = {{ iterations = 3, thresholds = {{ http_req_failed = {{ "rate<0.5" }}, ["http_reqs{{status:200}}"] = {{ "count==3" }} }} }}
function setup() return {{ who = "setup" }} end
function default() local r = http.get("{}") check(r, {{ ["is 200"] = function(r) return r.status == 200 end }}) end
function handleSummary(data)
  local m = data.metrics
  local line = string.format("reqs=%d checks=%d/%d failed_ok=%s sub=%d setup=%s",
    m.http_reqs.values.count, data.root_group.checks[1].passes, #data.root_group.checks,
    tostring(m.http_req_failed.thresholds["rate<0.5"].ok), m["http_reqs{{status:200}}"].values.count,
    data.setup_data.who)
  return {{ stdout = "custom: " .. line .. "\n", ["out/summary.json"] = json.encode(data) }}
end
"#,
            srv.url("/ok")
        ),
    );
    std::fs::create_dir_all(ws.path().join("out")).unwrap();
    let r = ws.run("t.lua", &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout
            .contains("custom: reqs=3 checks=3/1 failed_ok=true sub=3 setup=setup"),
        "{}",
        r.stdout
    );
    assert!(
        !r.stdout.contains("TOTAL RESULTS"),
        "the default summary is replaced: {}",
        r.stdout
    );
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(ws.path().join("out/summary.json")).unwrap())
            .unwrap();
    assert_eq!(written["metrics"]["http_reqs"]["type"], "counter");
    assert_eq!(written["metrics"]["http_req_duration"]["contains"], "time");
    assert_eq!(written["metrics"]["checks"]["values"]["rate"], 1.0);
    assert_eq!(
        r.metric("http_reqs", "count"),
        3.0,
        "--summary-export is still written"
    );
}

#[test]
fn json_and_csv_outputs_agree_with_the_summary() {
    let srv = start_server();
    let ws = Workspace::new();
    ws.write(
        "t.lua",
        &format!(
            "local lat = Trend('beacon_latency_ms')\noptions = {{ vus = 3, iterations = 30, thresholds = {{ http_req_duration = {{ 'p(95)<3000' }}, ['http_req_duration{{status:200,method:GET}}'] = {{ 'max<5000' }} }} }}\nfunction default()\n  local r = http.get('{}')\n  lat:add(r.timings.duration, {{ type = 'x' }})\nend\n",
            srv.url("/ok")
        ),
    );
    let json = ws.path().join("out.json");
    let csv = ws.path().join("out.csv");
    let r = ws.run(
        "t.lua",
        &[
            "--out",
            &format!("json={}", json.display()),
            "-o",
            &format!("csv={}", csv.display()),
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let text = std::fs::read_to_string(&json).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let points = |m: &str| {
        lines
            .iter()
            .filter(|l| l["type"] == "Point" && l["metric"] == m)
            .count()
    };
    assert_eq!(points("http_reqs") as f64, r.metric("http_reqs", "count"));
    assert_eq!(points("http_reqs"), 30);
    assert_eq!(points("beacon_latency_ms"), 30);
    let metric_line = lines
        .iter()
        .find(|l| l["type"] == "Metric" && l["metric"] == "http_req_duration")
        .unwrap();
    assert_eq!(metric_line["data"]["type"], "trend");
    assert_eq!(metric_line["data"]["contains"], "time");
    assert_eq!(metric_line["data"]["thresholds"][0], "p(95)<3000");
    let sub = &metric_line["data"]["submetrics"][0];
    assert_eq!(sub["name"], "http_req_duration{status:200,method:GET}");
    assert_eq!(sub["suffix"], "status:200,method:GET");
    assert_eq!(sub["tags"]["status"], "200");
    assert_eq!(sub["tags"]["method"], "GET");
    let reqs_line = lines
        .iter()
        .find(|l| l["type"] == "Metric" && l["metric"] == "http_reqs")
        .unwrap();
    assert!(reqs_line["data"]["submetrics"].is_null());
    let first_point = lines
        .iter()
        .position(|l| l["type"] == "Point" && l["metric"] == "http_req_duration")
        .unwrap();
    let metric_pos = lines
        .iter()
        .position(|l| l["type"] == "Metric" && l["metric"] == "http_req_duration")
        .unwrap();
    assert!(
        metric_pos < first_point,
        "the Metric line comes before its first Point"
    );
    let p = &lines[first_point]["data"];
    assert_eq!(p["tags"]["method"], "GET");
    assert_eq!(p["tags"]["status"], "200");
    assert!(p["time"].as_str().unwrap().ends_with('Z'));
    let csv_text = std::fs::read_to_string(&csv).unwrap();
    let mut rows = csv_text.lines();
    assert!(rows.next().unwrap().starts_with(
        "metric_name,timestamp,metric_value,check,error,error_code,expected_response,group,method"
    ));
    assert_eq!(
        csv_text
            .lines()
            .filter(|l| l.starts_with("http_reqs,"))
            .count(),
        30
    );
}

#[test]
fn an_unwritable_output_is_a_clear_config_error() {
    let ws = Workspace::new();
    ws.write("t.lua", "function default() end\n");
    let r = ws.run("t.lua", &["--out", "json=/nonexistent-dir/x.json"]);
    assert_eq!(r.code, 104);
    assert!(
        r.stderr.contains("--out json=/nonexistent-dir/x.json"),
        "{}",
        r.stderr
    );
    let r = ws.run("t.lua", &["--out", "influxdb=http://x"]);
    assert_eq!(r.code, 104);
}

#[test]
fn checks_nest_under_their_groups_in_root_group() {
    let srv = start_server();
    let ws = Workspace::new();
    ws.write(
        "t.lua",
        &format!(
            r#"
options = {{ iterations = 2 }}
function default()
  check(1, {{ ["top"] = function() return true end }})
  group("outer", function()
    local r = http.get("{u}")
    check(r, {{ ["in outer"] = function(r) return r.status == 200 end }})
    group("inner", function()
      check(r, {{ ["in inner"] = function() return false end }})
    end)
  end)
end
function handleSummary(data)
  local outer = data.root_group.groups[1]
  local inner = outer.groups[1]
  return {{ ["groups.txt"] = table.concat({{ #data.root_group.checks, outer.name, outer.path,
    outer.checks[1].name, outer.checks[1].passes, inner.path, inner.checks[1].path, inner.checks[1].fails }}, " ") }}
end
"#,
            u = srv.url("/ok")
        ),
    );
    let r = ws.run("t.lua", &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let root = &r.summary["root_group"];
    assert_eq!(root["checks"]["top"]["passes"], 2);
    let outer = &root["groups"]["outer"];
    assert_eq!(outer["path"], "::outer");
    assert_eq!(outer["checks"]["in outer"]["passes"], 2);
    assert_eq!(outer["checks"]["in outer"]["path"], "::outer::in outer");
    let inner = &outer["groups"]["inner"];
    assert_eq!(inner["path"], "::outer::inner");
    assert_eq!(inner["checks"]["in inner"]["fails"], 2);
    assert!(root["checks"].get("in inner").is_none());
    // k6's ids: the MD5 of the path, in hex.
    let md5_hex = |s: &str| {
        use md5::Digest;
        md5::Md5::digest(s.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    assert_eq!(root["id"], "d41d8cd98f00b204e9800998ecf8427e");
    assert_eq!(outer["id"], md5_hex("::outer"));
    assert_eq!(
        inner["checks"]["in inner"]["id"],
        md5_hex("::outer::inner::in inner")
    );
    let text = std::fs::read_to_string(ws.path().join("groups.txt")).unwrap();
    assert_eq!(
        text,
        "1 outer ::outer in outer 2 ::outer::inner ::outer::inner::in inner 2"
    );
}

#[test]
fn response_callbacks_decide_what_counts_as_failed() {
    let srv = start_server();
    let ws = Workspace::new();
    ws.write(
        "t.lua",
        &format!(
            r#"
http.setResponseCallback(http.expectedStatuses(200, {{ min = 400, max = 404 }}))
options = {{ iterations = 1, thresholds = {{ ["http_reqs{{expected_response:true}}"] = {{ "count>=0" }},
  ["http_reqs{{expected_response:false}}"] = {{ "count>=0" }} }} }}
function default()
  http.get("{base}/status/404")
  http.get("{base}/status/500")
  http.get("{base}/ok", {{ responseCallback = http.expectedStatuses(201) }})
  http.get("{base}/status/503", {{ responseCallback = false }})
  local ok, err = pcall(function() local cb = http.expectedStatuses("x"); return cb end)
  console.log("bad status:", err)
end
"#,
            base = srv.url("")
        ),
    );
    let r = ws.run("t.lua", &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.metric("http_reqs", "count"), 4.0);
    // 404 expected; 500, and 200 where only 201 was expected, failed; the 503 without a
    // callback has no http_req_failed sample and no expected_response tag.
    assert_eq!(r.metric("http_req_failed", "passes"), 2.0);
    assert_eq!(r.metric("http_req_failed", "fails"), 1.0);
    let m = &r.summary["metrics"];
    assert_eq!(m["http_reqs{expected_response:true}"]["count"], 1.0);
    assert_eq!(m["http_reqs{expected_response:false}"]["count"], 2.0);
    assert!(
        r.stderr
            .contains("t.lua:10: http.expectedStatuses: argument 1 must be a status"),
        "{}",
        r.stderr
    );
}

#[test]
fn vu_sleep_lag_measures_every_sleep_and_a_threshold_on_it_can_fail_the_run() {
    let ws = Workspace::new();
    ws.write(
        "t.lua",
        r#"
options = { vus = 2, iterations = 10, thresholds = { vu_sleep_lag = { "p(99)<50", "max<0" } } }
function default() sleep(0.01); sleep(0.02) end
"#,
    );
    let r = ws.run("t.lua", &["--summary-trend-stats", "count,max,p(99)"]);
    assert_eq!(r.code, 99, "max<0 fails: {}", r.stderr);
    assert_eq!(r.metric("vu_sleep_lag", "count"), 20.0);
    let t = &r.summary["metrics"]["vu_sleep_lag"]["thresholds"];
    assert_eq!(
        (t["p(99)<50"].as_bool(), t["max<0"].as_bool()),
        (Some(false), Some(true)),
        "{t}"
    );
}

#[test]
fn an_overloaded_arrival_rate_generator_shows_in_vu_sleep_lag() {
    let ws = Workspace::new();
    // 400 iterations/s of ~20 ms of Lua each on one worker: several times what it can start
    // on time, on any machine this runs on (~5 ms each was not always enough).
    ws.write(
        "t.lua",
        r#"
options = { scenarios = { busy = { executor = "constant-arrival-rate", rate = 400, timeUnit = "1s",
  duration = "1s", preAllocatedVUs = 50, maxVUs = 50 } } }
function default() local x = 0; for i = 1, 2000000 do x = x + i end end
"#,
    );
    let r = ws.run(
        "t.lua",
        &["--workers", "1", "--summary-trend-stats", "count,max"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    // One start-lag sample per started iteration (no sleeps in this script).
    let started = r.metric("iterations", "count");
    assert_eq!(r.metric("vu_sleep_lag", "count"), started);
    assert!(
        r.metric("vu_sleep_lag", "max") > 5.0,
        "{}",
        r.summary["metrics"]["vu_sleep_lag"]
    );
}
