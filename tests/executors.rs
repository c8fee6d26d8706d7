//! Arrival-rate executors and execution segments: the real binary against a real local
//! server, exact counts.

mod common;
use common::{start_server, Workspace};

fn dropped(r: &common::RunResult) -> f64 {
    r.summary["metrics"]["dropped_iterations"]["count"]
        .as_f64()
        .unwrap_or(0.0)
}

#[test]
fn constant_arrival_rate_starts_rate_times_duration_against_a_slow_server() {
    let srv = start_server();
    let ws = Workspace::new();
    ws.write(
        "t.lua",
        &format!(
            r#"
local exec = require "k6/execution"
options = {{ scenarios = {{ open = {{
  executor = "constant-arrival-rate", rate = 20, timeUnit = "1s", duration = "2s",
  preAllocatedVUs = 2, maxVUs = 30 }} }} }}
function default()
  http.get("{}?ms=300&i=" .. exec.scenario.iterationInTest .. "&sc=" .. exec.scenario.name)
end
"#,
            srv.url("/slow")
        ),
    );
    let r = ws.run("t.lua", &["--workers", "2"]);
    assert_eq!(r.code, 0, "stderr: {}", r.stderr);
    // Each iteration takes 300 ms: 6 run at once, more than preallocated, fewer than maxVUs.
    assert_eq!(srv.count("/slow"), 40);
    assert_eq!(r.metric("iterations", "count"), 40.0);
    assert_eq!(dropped(&r), 0.0);
    let mut seen: Vec<String> = srv.requests().into_iter().map(|s| s.query).collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 40, "iterationInTest values repeat");
    assert!(seen.iter().all(|q| q.ends_with("&sc=open")));
    let vus = r.metric("vus_max", "value");
    assert!((6.0..=30.0).contains(&vus), "vus_max {vus}");
}

#[test]
fn too_few_vus_drop_iterations_instead_of_slowing_down() {
    let srv = start_server();
    let ws = Workspace::new();
    ws.write(
        "t.lua",
        &format!(
            r#"
options = {{
  scenarios = {{ open = {{ executor = "constant-arrival-rate", rate = 20, duration = "2s",
    preAllocatedVUs = 1, maxVUs = 2 }} }},
  thresholds = {{ dropped_iterations = {{ "count<5" }} }},
}}
function default() http.get("{}?ms=450") end
"#,
            srv.url("/slow")
        ),
    );
    let r = ws.run("t.lua", &["--workers", "1"]);
    assert_eq!(
        r.code, 99,
        "the dropped_iterations threshold fails: {}",
        r.stderr
    );
    assert!(r.stderr.contains("Insufficient VUs"), "{}", r.stderr);
    let done = srv.count("/slow") as f64;
    assert_eq!(r.metric("iterations", "count"), done);
    // Two VUs at 450 ms each finish about 9 iterations; the rest of the 40 are dropped.
    assert_eq!(done + dropped(&r), 40.0);
    assert!((6.0..=12.0).contains(&done), "{done} iterations ran");
}

#[test]
fn ramping_arrival_rate_follows_the_integral_of_its_stages() {
    let srv = start_server();
    let ws = Workspace::new();
    ws.write(
        "t.lua",
        &format!(
            r#"
options = {{ scenarios = {{ ramp = {{ executor = "ramping-arrival-rate", startRate = 0,
  timeUnit = "1s", preAllocatedVUs = 5, maxVUs = 20,
  stages = {{ {{ duration = "1s", target = 40 }}, {{ duration = "1s", target = 40 }} }} }} }} }}
function default() http.get("{}?ms=20") end
"#,
            srv.url("/slow")
        ),
    );
    let r = ws.run("t.lua", &["--workers", "2"]);
    assert_eq!(r.code, 0, "stderr: {}", r.stderr);
    // 20 iterations arrive on the ramp and 40 on the plateau; the 60th falls on the end.
    assert_eq!(srv.count("/slow"), 59);
    assert_eq!(r.metric("iterations", "count"), 59.0);
    assert_eq!(dropped(&r), 0.0);
}

/// Per-scenario request counts the server saw, keyed by the `sc` query value.
fn per_scenario(srv: &common::TestServer) -> std::collections::BTreeMap<String, usize> {
    let mut m = std::collections::BTreeMap::new();
    for s in srv.requests() {
        *m.entry(s.query).or_default() += 1;
    }
    m
}

#[test]
fn two_half_segments_run_exactly_what_the_whole_plan_runs() {
    let script = |url: String| {
        format!(
            r#"
local exec = require "k6/execution"
options = {{ scenarios = {{
  shared = {{ executor = "shared-iterations", vus = 3, iterations = 11 }},
  pervu = {{ executor = "per-vu-iterations", vus = 5, iterations = 3 }},
  rate = {{ executor = "constant-arrival-rate", rate = 25, duration = "1s", preAllocatedVUs = 3 }},
  ramp = {{ executor = "ramping-arrival-rate", startRate = 10, preAllocatedVUs = 7,
            stages = {{ {{ duration = "1s", target = 30 }} }} }},
}} }}
function default() http.get("{url}?sc=" .. exec.scenario.name) end
"#
        )
    };
    let whole = start_server();
    let ws = Workspace::new();
    ws.write("t.lua", &script(whole.url("/seg")));
    let r = ws.run("t.lua", &[]);
    assert_eq!(r.code, 0, "stderr: {}", r.stderr);
    assert_eq!(dropped(&r), 0.0);

    let halves = start_server();
    ws.write("h.lua", &script(halves.url("/seg")));
    let seq = "0,1/2,1";
    let a = ws.run(
        "h.lua",
        &[
            "--execution-segment",
            "0:1/2",
            "--execution-segment-sequence",
            seq,
        ],
    );
    let b = ws.run(
        "h.lua",
        &[
            "--execution-segment",
            "1/2:1",
            "--execution-segment-sequence",
            seq,
        ],
    );
    assert_eq!((a.code, b.code), (0, 0), "{}{}", a.stderr, b.stderr);
    let expected = per_scenario(&whole);
    assert_eq!(expected["sc=shared"], 11);
    assert_eq!(expected["sc=pervu"], 15);
    assert_eq!(expected["sc=rate"], 25);
    assert_eq!(expected["sc=ramp"], 19); // 20 arrive in the second; the 20th at its end
    assert_eq!(per_scenario(&halves), expected);
    // Neither half ran everything.
    assert!(a.metric("iterations", "count") < r.metric("iterations", "count"));
    assert_eq!(
        a.metric("iterations", "count") + b.metric("iterations", "count"),
        r.metric("iterations", "count")
    );
}

#[test]
fn bad_arrival_rate_options_and_segments_are_config_errors() {
    let ws = Workspace::new();
    let cases = [
        (
            r#"rate = 0, duration = "1s", preAllocatedVUs = 1"#,
            "scenario x: option rate: must be greater than 0",
        ),
        (
            r#"rate = 5, duration = "1s""#,
            "scenario x: option preAllocatedVUs: is required",
        ),
        (
            r#"rate = 5, preAllocatedVUs = 1"#,
            "scenario x: option duration: is required",
        ),
        (
            r#"rate = 5, duration = "1s", preAllocatedVUs = 4, maxVUs = 2"#,
            "scenario x: option maxVUs: must be at least preAllocatedVUs (4), got 2",
        ),
        (
            r#"rate = 5, duration = "-1s", preAllocatedVUs = 1"#,
            "scenario x: option duration:",
        ),
        (
            r#"rate = 5, duration = "1s", timeUnit = "0s", preAllocatedVUs = 1"#,
            "scenario x: option timeUnit: must be greater than 0",
        ),
    ];
    for (opts, msg) in cases {
        ws.write(
            "t.lua",
            &format!(
                "options = {{ scenarios = {{ x = {{ executor = 'constant-arrival-rate', {opts} }} }} }}\nfunction default() end\n"
            ),
        );
        let r = ws.run("t.lua", &[]);
        assert_eq!(r.code, 104, "{opts}: {}", r.stderr);
        assert!(r.stderr.contains(msg), "{opts}: {}", r.stderr);
        assert_eq!(r.stderr.trim().lines().count(), 1, "{}", r.stderr);
    }
    ws.write("ok.lua", "function default() end\n");
    for (args, msg) in [
        (
            vec!["--execution-segment", "1/2:1/4"],
            "--execution-segment: segment \"1/2:1/4\" must start before it ends",
        ),
        (
            vec!["--execution-segment", "half"],
            "--execution-segment: invalid segment point",
        ),
        (
            vec![
                "--execution-segment",
                "0:1/3",
                "--execution-segment-sequence",
                "0,1/2,1",
            ],
            "is not one of the steps of sequence",
        ),
    ] {
        let r = ws.run("ok.lua", &args);
        assert_eq!(r.code, 104, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains(msg), "{args:?}: {}", r.stderr);
    }
}

#[test]
fn inspect_scales_arrival_rates_and_reports_the_segment() {
    let ws = Workspace::new();
    ws.write(
        "t.lua",
        "options = { scenarios = { r = { executor = 'ramping-arrival-rate', timeUnit = '1m', preAllocatedVUs = 10, maxVUs = 40, stages = { { duration = '10m', target = 600 } } } } }\nfunction default() end\n",
    );
    let v = ws.inspect(&[
        "--execution-requirements",
        "--time-scale",
        "10",
        "--vu-scale",
        "0.5",
        "--execution-segment",
        "0:1/2",
        "t.lua",
    ]);
    let sc = &v["scenarios"]["r"];
    assert_eq!(sc["executor"], "ramping-arrival-rate");
    assert_eq!(sc["timeUnit"], "6s");
    assert_eq!(sc["stages"][0]["duration"], "1m0s");
    assert_eq!(sc["stages"][0]["target"], 300);
    assert_eq!(
        (sc["preAllocatedVUs"].as_u64(), sc["maxVUs"].as_u64()),
        (Some(5), Some(20))
    );
    assert_eq!(v["maxVUs"], 10);
    assert_eq!(v["executionSegment"], "0:1/2");
}
