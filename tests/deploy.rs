//! The split test outside one process: the Kubernetes manifests `deploy/k8s/run.sh` renders,
//! validated offline against the Kubernetes API schema by a real validator
//! (`kubernetes-validate` from PyPI; no cluster exists here), and the local mode, which runs
//! the pods' own command (`deploy/engine-pod.sh`) as N processes and merges their parts.

mod common;
mod components;
use common::Workspace;
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

#[test]
fn the_rendered_manifests_validate_against_the_kubernetes_schema() {
    if components::require("kubernetes-validate").is_none() {
        return;
    }
    let ws = Workspace::new();
    let out = ws.path().join("manifests");
    let render = Command::new(format!("{ROOT}/deploy/k8s/run.sh"))
        .current_dir(ROOT)
        .env("ENGINE", env!("CARGO_BIN_EXE_engine"))
        .env("TEST_ID", "t1")
        .env(
            "K6_PROMETHEUS_RW_SERVER_URL",
            "http://prometheus:9090/api/v1/write",
        )
        .args([
            "--render-only",
            out.to_str().unwrap(),
            "lua/full-journey.lua",
            "10",
        ])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&render.stderr);
    assert!(render.status.success(), "{said}");
    // 25,000 VUs over 10 pods, memory from the measured cost per VU.
    assert!(
        said.contains("10 pods x 2500 VUs, 113Mi requested per pod"),
        "{said}"
    );
    let job = std::fs::read_to_string(out.join("job.yaml")).unwrap();
    for needle in [
        "completionMode: Indexed",
        "completions: 10",
        "parallelism: 10",
        "command: [/opt/engine/engine-pod.sh]",
        "claimName: engine-parts-t1",
        "instance:$(POD_NAME)",
    ] {
        assert!(job.contains(needle), "{needle} in {job}");
    }
    let files: Vec<String> = ["configmap.yaml", "pvc.yaml", "job.yaml", "merge-job.yaml"]
        .iter()
        .map(|f| out.join(f).display().to_string())
        .collect();
    let check = Command::new("kubernetes-validate")
        .arg("--strict")
        .args(&files)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&check.stdout).to_string()
        + &String::from_utf8_lossy(&check.stderr);
    assert!(check.status.success(), "{text}");
    assert_eq!(text.matches("passed for resource").count(), 4, "{text}");
    // The validator does reject what the API would: a misspelt field.
    let bad = out.join("bad.yaml");
    std::fs::write(&bad, job.replace("parallelism:", "parallelizm:")).unwrap();
    let rejected = Command::new("kubernetes-validate")
        .arg("--strict")
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!rejected.status.success());
}

#[test]
fn local_mode_runs_the_pod_command_n_times_and_merges_exactly() {
    let ws = Workspace::new();
    ws.write(
        "t.lua",
        r#"
local hits = require("k6/metrics").Counter("hits")
options = {
  scenarios = { s = { executor = "per-vu-iterations", vus = 7, iterations = 5 } },
  thresholds = { hits = { "count==35" } },
}
function default() hits:add(1) end
"#,
    );
    let parts = ws.path().join("parts");
    let run = Command::new(format!("{ROOT}/deploy/local/run.sh"))
        .current_dir(ws.path())
        .env("ENGINE", env!("CARGO_BIN_EXE_engine"))
        .env("PARTS_DIR", &parts)
        .env("START_DELAY", "1")
        .args(["t.lua", "3", "--seed", "3"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{err}");
    assert!(
        err.contains("3 parts of t.lua") && err.contains("100.00% of the plan"),
        "{err}"
    );
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(parts.join("summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary["metrics"]["iterations"]["count"], 35);
    assert_eq!(
        summary["metrics"]["hits"]["thresholds"]["count==35"], false,
        "passed"
    );
    for i in 0..3 {
        assert!(parts.join(format!("part-{i}.json")).is_file());
    }
}
