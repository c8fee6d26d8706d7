//! Split tests: parts written by `engine run --out part=FILE` from segment processes, merged
//! by `engine merge` into the same results as one unsplit run; refusals; `--start-at`.

mod common;
use common::Workspace;
use serde_json::Value;
use std::process::{Command, Output};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seeded: every Trend value comes from a VU's own math.random stream, and every VU runs a
/// fixed number of iterations whatever the timing: per-vu-iterations by definition, the
/// ramping VUs one each (their iteration outlasts the ramp), and shared-iterations deals
/// iteration i to VU i mod vus (the single run uses --workers 3, one VU per worker, so no
/// two VUs race for one pool there either).
const SCRIPT: &str = r#"
local k6 = require "k6"
local metrics = require "k6/metrics"
local seeded = metrics.Trend("seeded_ms")
local shared = metrics.Trend("shared_value")
local hits = metrics.Counter("hits")
local ok = metrics.Rate("ok_rate")
options = {
  scenarios = {
    pool = { executor = "shared-iterations", vus = 3, iterations = 60, exec = "pool" },
    each = { executor = "per-vu-iterations", vus = 6, iterations = 15 },
    ramp = { executor = "ramping-vus", startVUs = 0, gracefulRampDown = "10s", exec = "ramp",
             stages = { { duration = "600ms", target = 6 }, { duration = "600ms", target = 0 } } },
  },
  thresholds = { ok_rate = { "rate>0.5" }, seeded_ms = { "p(95)<500" } },
}
function pool()
  shared:add(math.random() * 1000)
  hits:add(1, { from = "pool" })
end
function default()
  seeded:add(math.random() * 1000, { kind = "each" })
  hits:add(2, { from = "each" })
  ok:add(math.random() < 0.8)
  k6.group("g", function() k6.check(math.random(), { ["below 0.9"] = function(x) return x < 0.9 end }) end)
end
function ramp()
  seeded:add(math.random() * 1000, { kind = "ramp" })
  k6.sleep(1.5)
end
"#;

fn engine(ws: &Workspace, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_engine"))
        .current_dir(ws.path())
        .args(args)
        .output()
        .unwrap()
}

/// `engine run` of t.lua as segment `i` of 3, writing its part to p{i}.json.
fn third(ws: &Workspace, i: u64, extra: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_engine"));
    c.current_dir(ws.path())
        .args(["run", "-q", "--no-summary"])
        .args(extra)
        .args(["--segment-count", "3", "--segment-index", &i.to_string()])
        .args(["--out", &format!("part=p{i}.json"), "t.lua"]);
    c
}

fn json(ws: &Workspace, name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(ws.path().join(name)).unwrap()).unwrap()
}

#[test]
fn three_parts_merge_to_exactly_the_single_runs_counts_rates_and_percentiles() {
    let ws = Workspace::new();
    ws.write("t.lua", SCRIPT);
    let single = engine(
        &ws,
        &[
            "run",
            "-q",
            "--seed",
            "11",
            "--workers",
            "3",
            "--summary-export",
            "single.json",
            "t.lua",
        ],
    );
    assert_eq!(
        single.status.code(),
        Some(99),
        "{}",
        String::from_utf8_lossy(&single.stderr)
    );
    let procs: Vec<_> = (0..3)
        .map(|i| third(&ws, i, &["--seed", "11"]).output().unwrap())
        .collect();
    for p in &procs {
        // Each part judges only its share; the test's verdict is the merge's.
        assert!(
            matches!(p.status.code(), Some(0 | 99)),
            "{}",
            String::from_utf8_lossy(&p.stderr)
        );
    }
    let merged = engine(
        &ws,
        &[
            "merge",
            "p0.json",
            "p1.json",
            "p2.json",
            "--summary-export",
            "merged.json",
        ],
    );
    let stderr = String::from_utf8_lossy(&merged.stderr);
    assert_eq!(merged.status.code(), Some(99), "{stderr}");
    assert!(
        stderr.contains("seeded_ms") && !stderr.contains("ok_rate"),
        "{stderr}"
    );
    let (a, b) = (json(&ws, "single.json"), json(&ws, "merged.json"));
    let (ma, mb) = (&a["metrics"], &b["metrics"]);
    // Counts, Rate values, every percentile, min and max of the seeded and the computed
    // Trends, verdicts: equal; averages to 12 digits.
    for (metric, fields) in [
        ("iterations", &["count"][..]),
        ("hits", &["count"]),
        ("checks", &["passes", "fails", "value"]),
        ("ok_rate", &["passes", "fails", "value", "thresholds"]),
        (
            "seeded_ms",
            &["avg", "min", "med", "max", "p(90)", "p(95)", "thresholds"],
        ),
        (
            "shared_value",
            &["avg", "min", "med", "max", "p(90)", "p(95)"],
        ),
    ] {
        for f in fields {
            if *f == "avg" {
                // A float sum in another order: equal to the last bits, not to all of them.
                let (x, y) = (
                    ma[metric][f].as_f64().unwrap(),
                    mb[metric][f].as_f64().unwrap(),
                );
                assert!((x - y).abs() <= x.abs() * 1e-12, "{metric}.avg: {x} vs {y}");
                continue;
            }
            assert_eq!(
                ma[metric][f], mb[metric][f],
                "{metric}.{f}: single {} merged {}",
                ma[metric], mb[metric]
            );
        }
    }
    assert_eq!(ma["iterations"]["count"], 60 + 6 * 15 + 6);
    assert_eq!(
        ma["seeded_ms"]["thresholds"]["p(95)<500"], true,
        "failed in both"
    );
    assert_eq!(a["root_group"], b["root_group"], "checks per group");
    // The merged summary prints like a run's.
    let text = String::from_utf8_lossy(&merged.stdout);
    assert!(
        text.contains("TOTAL RESULTS")
            && text.contains("seeded_ms")
            && text.contains("✗ 'p(95)<500'"),
        "{text}"
    );
}

#[test]
fn merge_refuses_parts_that_do_not_make_one_test() {
    let ws = Workspace::new();
    ws.write(
        "t.lua",
        "options = { vus = 2, iterations = 6 }\nfunction default() end\n",
    );
    ws.write(
        "u.lua",
        "options = { vus = 2, iterations = 7 }\nfunction default() end\n",
    );
    let part = |script: &str, seg: &str, out: &str| {
        let o = engine(
            &ws,
            &[
                "run",
                "-q",
                "--no-summary",
                "--execution-segment",
                seg,
                "--out",
                &format!("part={out}"),
                script,
            ],
        );
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    part("t.lua", "0:1/2", "a.json");
    part("t.lua", "1/2:1", "b.json");
    part("t.lua", "1/4:3/4", "c.json");
    part("u.lua", "1/2:1", "other.json");
    let text = std::fs::read_to_string(ws.path().join("b.json")).unwrap();
    ws.write("truncated.json", &text[..text.len() / 2]);
    ws.write(
        "future.json",
        &text.replace("\"version\":1", "\"version\":9"),
    );
    ws.write(
        "corrupt.json",
        &text.replace(
            "\"type\":\"trend\",\"count\":",
            "\"type\":\"trend\",\"count\":9",
        ),
    );
    ws.write("notapart.json", "{\"hello\": 1}");
    let ok = engine(&ws, &["merge", "a.json", "b.json"]);
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    for (parts, says) in [
        (&["a.json", "other.json"][..], "different plans"),
        (&["a.json", "b.json", "c.json"], "overlap"),
        (&["a.json"], "missing segment 1/2:1"),
        (
            &["a.json", "truncated.json"],
            "truncated.json: not a complete JSON document",
        ),
        (
            &["a.json", "future.json"],
            "future.json: format version 9 is newer",
        ),
        (&["a.json", "corrupt.json"], "corrupt.json"),
        (&["notapart.json"], "not an engine result part"),
        (&["a.json", "nothere.json"], "nothere.json"),
    ] {
        let mut args = vec!["merge"];
        args.extend_from_slice(parts);
        let o = engine(&ws, &args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(104), "{parts:?}: {err}");
        assert!(
            err.contains(says) && !err.contains("panicked"),
            "{parts:?}: {err}"
        );
        assert_eq!(err.lines().count(), 1, "one line: {err}");
    }
    let partial = engine(&ws, &["merge", "--allow-partial", "a.json"]);
    let err = String::from_utf8_lossy(&partial.stderr);
    assert_eq!(partial.status.code(), Some(0), "{err}");
    assert!(err.contains("missing 50.00% of the plan (1/2:1)"), "{err}");
}

#[test]
fn processes_started_apart_begin_together_at_start_at() {
    let ws = Workspace::new();
    ws.write(
        "t.lua",
        "local first = require('k6/metrics').Gauge('first_iteration_ms')\n\
         options = { vus = 1, iterations = 1 }\n\
         function default() first:add(Date.now() % 100000000) end\n",
    );
    let at_us = (SystemTime::now() + Duration::from_secs(4))
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64;
    let at = engine::timefmt::rfc3339_us(at_us);
    let mut children = Vec::new();
    for i in 0..3 {
        children.push(third(&ws, i, &["--start-at", &at]).spawn().unwrap());
        std::thread::sleep(Duration::from_secs(1));
    }
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    // Every part records when its test proper started.
    let starts: Vec<f64> = (0..3)
        .map(|i| {
            let p = json(&ws, &format!("p{i}.json"));
            assert!(
                p["start_skew_ms"].as_f64().unwrap().abs() < 50.0,
                "{}",
                p["start_skew_ms"]
            );
            p["started_ms"].as_f64().unwrap()
        })
        .collect();
    let spread = starts.iter().cloned().fold(f64::MIN, f64::max)
        - starts.iter().cloned().fold(f64::MAX, f64::min);
    eprintln!("start spread across the three processes: {spread} ms");
    assert!(spread <= 50.0, "{starts:?}");
    // One segment owns the plan's single VU; its first iteration began at --start-at.
    let began: Vec<f64> = (0..3)
        .flat_map(|i| {
            let p = json(&ws, &format!("p{i}.json"));
            p["series"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|s| s["metric"] == "first_iteration_ms")
                .map(|s| s["sink"]["last"].as_f64().unwrap())
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(began.len(), 1);
    let began = began[0];
    assert!(
        (began - (at_us / 1000 % 100_000_000) as f64).abs() < 50.0,
        "first iteration at {began}"
    );
}

#[test]
fn segment_index_comes_from_kubernetes_job_completion_index() {
    let ws = Workspace::new();
    ws.write(
        "t.lua",
        "options = { vus = 3, iterations = 9 }\nfunction default() end\n",
    );
    let o = Command::new(env!("CARGO_BIN_EXE_engine"))
        .current_dir(ws.path())
        .env("JOB_COMPLETION_INDEX", "2")
        .args([
            "run",
            "-q",
            "--no-summary",
            "--segment-count",
            "3",
            "--out",
            "part=p.json",
            "t.lua",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let p = json(&ws, "p.json");
    assert_eq!(p["segment"], "2/3:1");
    assert_eq!(p["iterations_complete"], 3);
    let bad = engine(
        &ws,
        &[
            "run",
            "-q",
            "--segment-count",
            "3",
            "--segment-index",
            "3",
            "t.lua",
        ],
    );
    assert_eq!(bad.status.code(), Some(104));
}
