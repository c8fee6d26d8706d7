//! The ported journey suite, scaled down, end to end against the reference server: every
//! script must finish with its thresholds and integrity checks passing.

mod common;
use std::process::Command;
use std::time::Duration;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
    summary: serde_json::Value,
}

fn engine(args: &[&str]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("summary.json");
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new(env!("CARGO_BIN_EXE_engine"))
        .current_dir(root)
        .arg("run")
        .arg("-q")
        .arg("--summary-export")
        .arg(&export)
        .args(args)
        .output()
        .unwrap();
    let summary = std::fs::read_to_string(&export)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        summary,
    }
}

/// A reference server in this process with the given session TTL: its runtime, its URL,
/// and the sender whose drop stops it.
fn reference_server(
    session_ttl: Duration,
) -> (
    tokio::runtime::Runtime,
    String,
    tokio::sync::oneshot::Sender<()>,
) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (url, tx) = rt.block_on(async {
        let app = engine::target::open(None, Duration::from_secs(1800), session_ttl).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(engine::target::run(listener, app, async {
            let _ = rx.await;
        }));
        (url, tx)
    });
    (rt, url, tx)
}

fn assert_passed(r: &Run, script: &str) {
    assert_eq!(
        r.code, 0,
        "{script}: exit {}\n{}\n{}",
        r.code, r.stdout, r.stderr
    );
    let checks = &r.summary["root_group"]["checks"];
    for (name, c) in checks.as_object().unwrap() {
        if name.starts_with("integrity:") {
            assert_eq!(c["fails"], 0, "{script}: check {name} failed\n{}", r.stderr);
        }
    }
}

fn integrity_checks(r: &Run) -> usize {
    r.summary["root_group"]["checks"]
        .as_object()
        .map_or(0, |m| {
            m.keys().filter(|k| k.starts_with("integrity:")).count()
        })
}

#[test]
fn full_journey_scaled_down() {
    let r = engine(&[
        "--serve",
        "--time-scale",
        "120",
        "--vu-scale",
        "0.004",
        "lua/full-journey.lua",
    ]);
    assert_passed(&r, "full-journey");
    assert!(integrity_checks(&r) >= 5, "{}", r.stdout);
    // the two completion metrics stay separate
    let congrats = r.summary["metrics"]["total_funnel_completes"]["count"]
        .as_f64()
        .unwrap();
    let missions = r.summary["metrics"]["total_mission_completes"]["count"]
        .as_f64()
        .unwrap();
    assert!(
        congrats > missions && missions > 0.0,
        "{congrats} {missions}"
    );
}

#[test]
fn journey_blitz_and_conversion_soak_scaled_down() {
    let r = engine(&[
        "--serve",
        "--time-scale",
        "25",
        "--vu-scale",
        "0.005",
        "lua/journey-blitz.lua",
    ]);
    assert_passed(&r, "journey-blitz");
    let r = engine(&[
        "--serve",
        "--time-scale",
        "68",
        "--vu-scale",
        "0.05",
        "lua/conversion-soak.lua",
    ]);
    assert_passed(&r, "conversion-soak");
}

#[test]
fn bounce_storm_leaves_one_net_bounce_per_final_exit() {
    let r = engine(&[
        "--serve",
        "--time-scale",
        "27",
        "--vu-scale",
        "0.01",
        "lua/bounce-storm.lua",
    ]);
    assert_passed(&r, "bounce-storm");
    let c = &r.summary["root_group"]["checks"]
        ["integrity: net bounces == VUs that ended on a final exit"];
    assert_eq!(c["passes"], 6, "one check per step: {c}");
}

#[test]
fn smoke_beacon_stress_and_d1_contention_scaled_down() {
    for (script, scale, vus) in [
        ("lua/smoke-test.lua", "6", "1"),
        ("lua/beacon-stress.lua", "30", "0.005"),
        ("lua/d1-contention.lua", "12", "0.05"),
    ] {
        let r = engine(&["--serve", "--time-scale", scale, "--vu-scale", vus, script]);
        assert_passed(&r, script);
        assert!(r.summary["metrics"]["http_reqs"]["count"].as_f64().unwrap() > 0.0);
    }
}

#[test]
fn dashboard_under_load_beside_a_journey_on_one_server() {
    // One reference server for both runs, as the spec's "run in parallel" step.
    let (_rt, url, _guard) = reference_server(Duration::from_secs(1));
    let tracking = format!("TRACKING_URL={url}");
    let dashboard = format!("DASHBOARD_API_URL={url}");
    let journey = {
        let (t, d) = (tracking.clone(), dashboard.clone());
        std::thread::spawn(move || {
            engine(&[
                "-e",
                &t,
                "-e",
                &d,
                "--time-scale",
                "60",
                "--vu-scale",
                "0.004",
                "lua/full-journey.lua",
            ])
        })
    };
    std::thread::sleep(Duration::from_secs(3));
    let dash = engine(&[
        "-e",
        &dashboard,
        "-e",
        "DASHBOARD_DURATION=12s",
        "lua/dashboard-under-load.lua",
    ]);
    assert_passed(&dash, "dashboard-under-load");
    let c = &dash.summary["root_group"]["checks"]["funnel data has entries"];
    assert!(c["passes"].as_u64().unwrap() >= 2, "{c}");
    // Polls on a clock: 12 s at one per 5 s, 10 s and 30 s, whatever each answer took.
    let polls = |name: &str| {
        let c = &dash.summary["root_group"]["checks"][name];
        c["passes"].as_u64().unwrap() + c["fails"].as_u64().unwrap()
    };
    assert_eq!(
        (
            polls("funnel under 3s"),
            polls("stats is 200"),
            polls("health is 200")
        ),
        (3, 2, 1)
    );
    let j = journey.join().unwrap();
    assert_passed(&j, "full-journey beside the dashboard");
}

#[test]
fn integrity_holds_against_a_standalone_server_with_its_own_ttl_and_other_traffic() {
    // A standalone server keeps its unscaled 60 s session TTL while the run is compressed
    // 60 times, and another team's sessions are live on it: the live-session check must
    // count this run's source only, and accept the sessions of journeys cut off at the end.
    let (rt, url, _guard) = reference_server(Duration::from_secs(60));
    rt.block_on(async {
        let c = reqwest::Client::new();
        for i in 0..5 {
            let beacon = serde_json::json!({ "type": "funnel_enter", "page": "website",
                "session_id": format!("other-{i}"), "source": "another-team" });
            let r = c
                .post(format!("{url}/track"))
                .body(beacon.to_string())
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), 200);
        }
    });
    let r = engine(&[
        "-e",
        &format!("TRACKING_URL={url}"),
        "-e",
        &format!("DASHBOARD_API_URL={url}"),
        "--time-scale",
        "60",
        "--vu-scale",
        "0.01",
        "lua/journey-blitz.lua",
    ]);
    assert_passed(&r, "journey-blitz against a standalone server");
    assert!(
        r.stderr
            .contains("live sessions of k6-journey-blitz after the run"),
        "{}",
        r.stderr
    );
}
