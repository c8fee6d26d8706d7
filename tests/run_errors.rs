//! Bad input and failures: one clear line, k6's exit codes, and the run goes on where k6's does.

mod common;
use common::{start_server, Workspace};

#[test]
fn syntax_error_names_file_and_line_with_exit_107() {
    let ws = Workspace::new();
    ws.write(
        "bad.lua",
        "local x = 1\nfunction default(\n  http.get('x')\nend\n",
    );
    let r = ws.run("bad.lua", &[]);
    assert_eq!(r.code, 107);
    let line = r
        .stderr
        .lines()
        .find(|l| l.starts_with("engine:"))
        .unwrap_or("");
    assert!(line.contains("bad.lua:3:"), "{}", r.stderr);
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
}

#[test]
fn missing_script_and_module_are_clear() {
    let ws = Workspace::new();
    let r = ws.run("nope.lua", &[]);
    assert_eq!(r.code, 107);
    assert!(r.stderr.contains("nope.lua"), "{}", r.stderr);
    ws.write(
        "m.lua",
        "local x = require 'no_such_module'\nfunction default() end\n",
    );
    let r = ws.run("m.lua", &[]);
    assert_eq!(r.code, 107);
    assert!(
        r.stderr.contains("m.lua:1:") && r.stderr.contains("no_such_module"),
        "{}",
        r.stderr
    );
}

#[test]
fn bad_options_are_config_errors_naming_the_option() {
    let ws = Workspace::new();
    ws.write("t.lua", "function default() end\n");
    for (args, needle) in [
        (vec!["--duration", "10x"], "--duration"),
        (vec!["--vus", "-3", "--duration", "1s"], "--vus"),
        (vec!["--stage", "abc"], "--stage"),
        (vec!["--bogus"], "--bogus"),
        (vec!["--env", "1BAD=x"], "--env"),
    ] {
        let r = ws.run("t.lua", &args);
        assert_eq!(r.code, 104, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains(needle), "{args:?}: {}", r.stderr);
        assert_eq!(r.stderr.trim().lines().count(), 1, "one line: {}", r.stderr);
    }
    ws.write(
        "o.lua",
        "options = { vus = -2, duration = '1s' }\nfunction default() end\n",
    );
    let r = ws.run("o.lua", &[]);
    assert_eq!(r.code, 104);
    assert!(r.stderr.contains("vus"), "{}", r.stderr);
    ws.write("s.lua", "options = { scenarios = { a = { executor = 'constant-vus', vus = 1, duration = '1s', exec = 'nothere' } } }\nfunction default() end\n");
    let r = ws.run("s.lua", &[]);
    assert_eq!(r.code, 104);
    assert!(
        r.stderr.contains("scenario a") && r.stderr.contains("nothere"),
        "{}",
        r.stderr
    );
}

#[test]
fn error_in_init_or_setup_aborts_with_107() {
    let ws = Workspace::new();
    ws.write(
        "i.lua",
        "local t = nil\nlocal x = t.field\nfunction default() end\n",
    );
    let r = ws.run("i.lua", &[]);
    assert_eq!(r.code, 107);
    assert!(r.stderr.contains("i.lua:2:"), "{}", r.stderr);
    ws.write(
        "s.lua",
        "function setup()\n  error('no login')\nend\nfunction default() end\n",
    );
    let r = ws.run("s.lua", &[]);
    assert_eq!(r.code, 107);
    assert!(
        r.stderr.contains("s.lua:2:") && r.stderr.contains("no login"),
        "{}",
        r.stderr
    );
}

#[test]
fn an_iteration_error_ends_only_that_iteration() {
    let srv = start_server();
    let ws = Workspace::new();
    ws.write(
        "t.lua",
        &format!(
            "options = {{ vus = 2, iterations = 10 }}\nfunction default()\n  http.get('{}')\n  if __ITER % 2 == 0 then\n    local t = nil\n    return t.x\n  end\nend\n",
            srv.url("/ok")
        ),
    );
    let r = ws.run("t.lua", &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(srv.count("/ok"), 10);
    assert_eq!(r.metric("http_reqs", "count"), 10.0);
    // An iteration that threw ran to its end: k6 v1.1 counts it in `iterations`.
    assert_eq!(r.metric("iterations", "count"), 10.0);
    assert!(r.stderr.contains("t.lua:6:"), "{}", r.stderr);
    assert!(r.stderr.contains("stack traceback"), "{}", r.stderr);
}

#[test]
fn thousands_of_failing_iterations_do_not_flood_stderr() {
    let ws = Workspace::new();
    ws.write(
        "t.lua",
        "options = { vus = 50, iterations = 5000 }\nfunction default() error('boom') end\n",
    );
    let r = ws.run("t.lua", &["--workers", "1"]);
    assert_eq!(r.code, 0);
    let errors = r.stderr.lines().filter(|l| l.starts_with("ERRO")).count();
    assert!(errors <= 10, "{errors} error lines");
    assert!(
        r.stderr.contains("more iteration errors were not printed"),
        "{}",
        r.stderr
    );
}

#[test]
fn refused_connections_and_timeouts_are_status_0_with_k6_error_codes() {
    let srv = start_server();
    let ws = Workspace::new();
    ws.write(
        "t.lua",
        &format!(
            r#"
function default()
  local r = http.get("http://127.0.0.1:1/")
  check(r, {{ ["refused"] = function(r) return r.status == 0 and r.error_code == 1212 and r.error ~= "" end }})
  local t = http.get("{slow}", {{ timeout = "200ms" }})
  check(t, {{ ["timeout"] = function(r) return r.status == 0 and r.error_code == 1050 end }})
  local n = http.get("{nf}")
  check(n, {{ ["404 code"] = function(r) return r.status == 404 and r.error_code == 1404 end }})
end
"#,
            slow = srv.url("/slow?ms=2000"),
            nf = srv.url("/status/404")
        ),
    );
    let r = ws.run("t.lua", &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    r.assert_passed_once(&["refused", "timeout", "404 code"]);
    assert_eq!(r.metric("http_reqs", "count"), 3.0);
    assert_eq!(r.metric("http_req_failed", "passes"), 3.0);
}

#[test]
fn test_abort_stops_the_run_with_108_and_teardown_still_runs() {
    let srv = start_server();
    let ws = Workspace::new();
    ws.write(
        "t.lua",
        &format!(
            "local exec = require 'k6/execution'\noptions = {{ vus = 2, duration = '30s' }}\nfunction default()\n  if __ITER == 2 then exec.test.abort('enough') end\n  sleep(0.01)\nend\nfunction teardown() http.get('{}') end\n",
            srv.url("/teardown")
        ),
    );
    let started = std::time::Instant::now();
    let r = ws.run("t.lua", &[]);
    assert_eq!(r.code, 108, "{}", r.stderr);
    assert!(r.stderr.contains("enough"), "{}", r.stderr);
    assert!(
        started.elapsed().as_secs() < 20,
        "the abort did not stop the 30s run"
    );
    assert_eq!(srv.count("/teardown"), 1);
}

#[test]
fn http_in_init_code_is_a_clear_error() {
    let ws = Workspace::new();
    ws.write(
        "t.lua",
        "local r = http.get('http://127.0.0.1:1/')\nfunction default() end\n",
    );
    let r = ws.run("t.lua", &[]);
    assert_eq!(r.code, 107);
    assert!(
        r.stderr.contains("t.lua:1:") && r.stderr.contains("init code"),
        "{}",
        r.stderr
    );
}

#[test]
fn metric_name_and_type_clashes_are_errors() {
    let ws = Workspace::new();
    ws.write(
        "t.lua",
        "local a = Rate('x')\nlocal b = Counter('x')\nfunction default() end\n",
    );
    let r = ws.run("t.lua", &[]);
    assert_eq!(r.code, 107);
    assert!(
        r.stderr.contains("t.lua:2:") && r.stderr.contains("already registered"),
        "{}",
        r.stderr
    );
    ws.write(
        "n.lua",
        "local a = Trend('bad-name')\nfunction default() end\n",
    );
    let r = ws.run("n.lua", &[]);
    assert!(r.stderr.contains("invalid metric name"), "{}", r.stderr);
}

#[test]
fn bad_request_arguments_raise_at_the_script_line_and_good_ones_are_sent() {
    let srv = start_server();
    let ws = Workspace::new();
    ws.write(
        "t.lua",
        &format!(
            r#"options = {{ vus = 1, iterations = 1 }}
local url = '{ok}'
local cases = {{
  function() http.get(url, {{ headers = {{ ['X-Bad'] = {{}} }} }}) end,
  function() http.get(url, {{ timeout = true }}) end,
  function() http.post(url, function() end) end,
  function() http.get(42) end,
  function() http.get(url, 'params') end,
  function() http.get(url, {{ responseType = 'blob' }}) end,
  function() http.get(url, {{ headers = {{ ['bad name'] = 'x' }} }}) end,
  function() http.request('BAD METHOD', url) end,
}}
function default()
  for i, f in ipairs(cases) do
    local ok, err = pcall(f)
    console.log('case', i, ok, err)
  end
  local h = http.get('{headers}', {{ headers = {{ ['X-Num'] = 5, ['X-On'] = true }},
    cookies = {{ a = {{ value = 'b' }}, c = 'd' }}, timeout = 1500, tags = {{ n = 1 }} }})
  console.log('headers', h.body)
  local e = http.post('{echo}', {{ k = 'v w' }})
  console.log('echo', e.body)
end
"#,
            ok = srv.url("/ok"),
            headers = srv.url("/headers"),
            echo = srv.url("/echo"),
        ),
    );
    let r = ws.run("t.lua", &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // None of the bad calls reached the server; the two good ones did.
    assert_eq!(srv.count("/ok"), 0);
    assert_eq!(r.metric("http_reqs", "count"), 2.0);
    let expect = [
        (
            4,
            "params.headers: value for x-bad must be a string or number, got table",
        ),
        (5, "params.timeout: expected a duration, got boolean"),
        (6, "body must be a string or a table, got function"),
        (7, "url must be a string, got number"),
        (8, "params must be a table, got string"),
        (
            9,
            "params.responseType: expected \"text\", \"binary\" or \"none\", got \"blob\"",
        ),
        (10, "params.headers: invalid header name \"bad name\""),
        (11, "invalid method \"BAD METHOD\""),
    ];
    for (i, (line, msg)) in expect.iter().enumerate() {
        let case = r
            .stderr
            .lines()
            .find(|l| l.contains(&format!("case {} false", i + 1)))
            .unwrap_or_else(|| panic!("case {} not logged: {}", i + 1, r.stderr));
        assert!(case.contains(&format!("t.lua:{line}: ")), "{case}");
        assert!(case.contains(msg), "{case}");
    }
    assert!(r.stderr.contains("x-num: 5"), "{}", r.stderr);
    assert!(r.stderr.contains("x-on: true"), "{}", r.stderr);
    let seen = srv.requests();
    let cookie = &seen.iter().find(|s| s.path == "/headers").unwrap().cookie;
    assert!(cookie.contains("a=b") && cookie.contains("c=d"), "{cookie}");
    assert_eq!(
        seen.iter().find(|s| s.path == "/echo").unwrap().body,
        "k=v+w"
    );
}

#[test]
fn a_refused_target_is_warned_about_at_once_and_every_failure_is_accounted_for() {
    let ws = Workspace::new();
    // A port nobody listens on: bind one, note it, close it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    ws.write(
        "t.lua",
        &format!(
            "options = {{ vus = 4, iterations = 60 }}\nfunction default() http.post('http://127.0.0.1:{port}/track', 'x') end\n"
        ),
    );
    let r = ws.run("t.lua", &["--workers", "1"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let warned: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.contains("Request Failed"))
        .collect();
    assert!(!warned.is_empty(), "{}", r.stderr);
    for l in &warned {
        assert!(
            l.contains("method=POST")
                && l.contains(&format!("url=http://127.0.0.1:{port}/track"))
                && l.contains("refused"),
            "{l}"
        );
    }
    // At most 5 lines per second per worker; the rest are counted, none lost.
    let held_back: u64 = r
        .stderr
        .lines()
        .filter_map(|l| {
            l.strip_prefix("WARN  ")?
                .strip_suffix(" more request failures were not printed")
        })
        .map(|n| n.parse::<u64>().unwrap())
        .sum();
    assert!(
        warned.len() <= 5 * 2,
        "{} lines: {}",
        warned.len(),
        r.stderr
    );
    assert_eq!(warned.len() as u64 + held_back, 60, "{}", r.stderr);
    assert_eq!(r.metric("http_reqs", "count"), 60.0);
}

#[test]
fn throw_makes_a_failed_request_an_error_in_the_script() {
    let ws = Workspace::new();
    ws.write(
        "t.lua",
        "options = { iterations = 2, throw = true }\nfunction default()\n  local ok, e = pcall(http.get, 'http://127.0.0.1:1/x')\n  check(e, { ['raised with the url'] = function(m) return not ok and tostring(m):find('127.0.0.1:1/x', 1, true) ~= nil end })\nend\n",
    );
    let r = ws.run("t.lua", &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.check("raised with the url"), (2, 0), "{}", r.stderr);
    assert!(!r.stderr.contains("Request Failed"), "{}", r.stderr);
}

#[test]
fn a_journey_against_a_dead_target_stops_at_once_naming_the_url() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let root = env!("CARGO_MANIFEST_DIR");
    let started = std::time::Instant::now();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_engine"))
        .current_dir(root)
        .args(["run", "-q", "--no-summary", "-e"])
        .arg(format!("TRACKING_URL={url}"))
        .arg("-e")
        .arg(format!("DASHBOARD_API_URL={url}"))
        .arg("lua/full-journey.lua")
        .output()
        .unwrap();
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(108), "{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.starts_with("engine:"))
        .unwrap_or("");
    assert!(
        line.contains(&format!("TRACKING_URL {url}")) && line.contains("engine serve"),
        "{stderr}"
    );
    // The issue's bound: a newcomer knows within 2 seconds (it takes milliseconds).
    assert!(took < std::time::Duration::from_secs(2), "took {took:?}");
}

#[test]
fn zero_workers_is_a_config_error() {
    let ws = Workspace::new();
    ws.write("t.lua", "function default() end\n");
    let r = ws.run("t.lua", &["--workers", "0"]);
    assert_eq!(r.code, 104, "{}", r.stderr);
    assert!(r.stderr.contains("--workers 0"), "{}", r.stderr);
}

/// A server on 127.0.0.1 that redirects every request to itself; counts requests.
fn redirect_loop() -> (String, std::sync::Arc<std::sync::atomic::AtomicU64>) {
    use std::io::{Read, Write};
    use std::sync::atomic::{AtomicU64, Ordering};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/loop", listener.local_addr().unwrap());
    let count = std::sync::Arc::new(AtomicU64::new(0));
    let seen = count.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let seen = seen.clone();
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while let Ok(n) = conn.read(&mut chunk) {
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        buf.drain(..end + 4);
                        seen.fetch_add(1, Ordering::SeqCst);
                        let res =
                            b"HTTP/1.1 302 Found\r\nLocation: /loop\r\nContent-Length: 0\r\n\r\n";
                        if conn.write_all(res).is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    (url, count)
}

#[test]
fn stopping_at_the_redirect_limit_is_warned_unless_the_script_set_one() {
    use std::sync::atomic::Ordering;
    let (url, count) = redirect_loop();
    let ws = Workspace::new();
    ws.write(
        "t.lua",
        &format!("options = {{ iterations = 1 }}\nfunction default() http.get('{url}') end\n"),
    );
    let r = ws.run("t.lua", &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // The request and 10 redirects, as k6 follows by default.
    assert_eq!(count.load(Ordering::SeqCst), 11);
    assert!(
        r.stderr.contains("Stopped after 11 redirects") && r.stderr.contains(&url),
        "{}",
        r.stderr
    );
    ws.write(
        "u.lua",
        &format!("options = {{ iterations = 1 }}\nfunction default() http.get('{url}', {{ redirects = 3 }}) end\n"),
    );
    let r = ws.run("u.lua", &[]);
    assert_eq!(count.load(Ordering::SeqCst), 11 + 4);
    assert!(!r.stderr.contains("Stopped after"), "{}", r.stderr);
}

#[test]
fn a_failed_teardown_fails_the_run_with_107_after_the_summary() {
    let ws = Workspace::new();
    ws.write(
        "t.lua",
        "options = { iterations = 1 }\nfunction default() end\nfunction teardown() error('integrity broken') end\n",
    );
    let r = ws.run("t.lua", &[]);
    assert_eq!(r.code, 107, "{}", r.stderr);
    assert!(r.stderr.contains("integrity broken"), "{}", r.stderr);
    assert_eq!(
        r.metric("iterations", "count"),
        1.0,
        "the summary is still written"
    );
}

#[test]
fn fail_and_errors_count_as_complete_iterations_as_in_k6() {
    let ws = Workspace::new();
    ws.write(
        "t.lua",
        "local k6 = require 'k6'\noptions = { iterations = 3 }\nfunction default() k6.fail('nope') end\n",
    );
    let r = ws.run("t.lua", &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.metric("iterations", "count"), 3.0);
    assert!(
        r.stdout.contains("3 complete and 0 interrupted iterations"),
        "{}",
        r.stdout
    );
}

#[test]
fn option_typos_and_shapes_are_refused_with_the_nearest_name() {
    let ws = Workspace::new();
    let cases = [
        (
            "options = { scenarios = { a = { executor = 'constant-arrival-rate', rate = 1, duration = '1s', preAllocatedVUs = 1, maxVus = 2 } } }",
            "scenario a: unknown option \"maxVus\" (did you mean \"maxVUs\"?)",
        ),
        (
            "options = { scenarios = { a = { executor = 'constant-vus', duration = '1s', gracefulstop = '1s' } } }",
            "did you mean \"gracefulStop\"?",
        ),
        ("options = 5", "options: expected a table"),
        (
            "options = { thresholds = { http_reqs = 'count>0' } }",
            "threshold http_reqs: expected a list",
        ),
    ];
    for (opts, needle) in cases {
        ws.write("t.lua", &format!("{opts}\nfunction default() end\n"));
        let r = ws.run("t.lua", &[]);
        assert_eq!(r.code, 104, "{opts}: {}", r.stderr);
        assert!(r.stderr.contains(needle), "{opts}: {}", r.stderr);
    }
    ws.write(
        "t.lua",
        "options = { iterationz = 2 }\nfunction default() end\n",
    );
    let r = ws.run("t.lua", &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("unknown option \"iterationz\" is ignored (did you mean \"iterations\"?)"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_broken_or_missing_module_shows_where_and_why_on_one_line() {
    let ws = Workspace::new();
    ws.write(
        "badmod.lua",
        "local M = {}\nfunction M.f(\n  return 1\nend\nreturn M\n",
    );
    ws.write(
        "a.lua",
        "local b = require 'badmod'\nfunction default() end\n",
    );
    let r = ws.run("a.lua", &[]);
    assert_eq!(r.code, 107, "{}", r.stderr);
    let line = r
        .stderr
        .lines()
        .find(|l| l.starts_with("engine:"))
        .unwrap_or("");
    assert!(
        line.contains("badmod.lua:3:") && line.contains("near 'return'"),
        "{}",
        r.stderr
    );
    ws.write(
        "b.lua",
        "local b = require 'nomod'\nfunction default() end\n",
    );
    let r = ws.run("b.lua", &[]);
    let line = r
        .stderr
        .lines()
        .find(|l| l.starts_with("engine:"))
        .unwrap_or("");
    assert!(
        line.contains("b.lua:1:")
            && line.contains("no file './nomod.lua'")
            && line.contains("lib/nomod.lua"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_vu_in_a_cpu_bound_loop_is_interrupted_at_its_deadline_and_the_others_go_on() {
    let ws = Workspace::new();
    ws.write(
        "t.lua",
        "options = { scenarios = { s = { executor = 'constant-vus', vus = 2, duration = '1s', gracefulStop = '500ms' } } }\nfunction default()\n  if __VU == 1 then while true do end end\n  sleep(0.1)\nend\nfunction teardown() console.log('teardown ran') end\n",
    );
    let started = std::time::Instant::now();
    // One worker: the looping VU shares its thread with the other.
    let r = ws.run("t.lua", &["--workers", "1"]);
    let took = started.elapsed();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("teardown ran"), "{}", r.stderr);
    // VU 2 kept iterating (about 10 times) beside the loop; VU 1 was cut at 1.5 s.
    let iterations = r.metric("iterations", "count");
    assert!((3.0..=11.0).contains(&iterations), "{iterations}");
    assert!(
        r.stdout.contains("1 interrupted iterations"),
        "{}",
        r.stdout
    );
    // Deadline (1.5 s) plus one second, the issue's bound.
    assert!(
        took < std::time::Duration::from_millis(2500),
        "took {took:?}"
    );
}

#[test]
fn runaway_setup_and_teardown_hit_their_timeouts() {
    let ws = Workspace::new();
    ws.write(
        "s.lua",
        "options = { setupTimeout = '1s', iterations = 1 }\nfunction setup() while true do end end\nfunction default() end\n",
    );
    let r = ws.run("s.lua", &[]);
    assert_eq!(r.code, 100, "{}", r.stderr);
    assert!(
        r.stderr.contains("setup() execution timed out after 1s"),
        "{}",
        r.stderr
    );
    ws.write(
        "t.lua",
        "options = { teardownTimeout = '1s', iterations = 1 }\nfunction default() end\nfunction teardown() local x = 0 while true do x = x + 1 end end\n",
    );
    let r = ws.run("t.lua", &[]);
    assert_eq!(r.code, 101, "{}", r.stderr);
    assert_eq!(
        r.metric("iterations", "count"),
        1.0,
        "the summary is still written"
    );
}

/// A running `engine run` whose stderr is read line by line, for signal tests.
struct Child {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Child {
    fn start(ws: &Workspace, script: &str) -> Child {
        use std::io::BufRead;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_engine"))
            .current_dir(ws.path())
            .args(["run", "-q", script])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let all = stderr.clone();
        let pipe = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(pipe).lines().map_while(Result::ok) {
                all.lock().unwrap().push_str(&format!("{line}\n"));
                let _ = tx.send(line);
            }
        });
        Child {
            child,
            lines,
            stderr,
        }
    }

    /// Waits (at most 10 s) for a stderr line containing `marker`.
    fn wait_for(&self, marker: &str) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while let Ok(line) = self
            .lines
            .recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
        {
            if line.contains(marker) {
                return;
            }
        }
        panic!("no {marker:?} on stderr: {}", self.stderr.lock().unwrap());
    }

    fn signal(&self, sig: i32) {
        // SAFETY: signalling a child process this test started.
        unsafe { libc::kill(self.child.id() as i32, sig) };
    }

    /// Exit code, stdout, stderr, and how long it took after the last signal.
    fn finish(
        self,
        since: std::time::Instant,
    ) -> (Option<i32>, String, String, std::time::Duration) {
        let out = self.child.wait_with_output().unwrap();
        let took = since.elapsed();
        std::thread::sleep(std::time::Duration::from_millis(50));
        let stderr = self.stderr.lock().unwrap().clone();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr,
            took,
        )
    }
}

#[test]
fn a_signal_during_setup_stops_the_run_without_teardown_and_prints_the_summary() {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        let ws = Workspace::new();
        ws.write(
            "t.lua",
            "options = { iterations = 1 }\nfunction setup() console.log('in setup') sleep(30) end\nfunction default() console.log('iteration ran') end\nfunction teardown() console.log('teardown ran') end\n",
        );
        let child = Child::start(&ws, "t.lua");
        child.wait_for("in setup");
        let sent = std::time::Instant::now();
        child.signal(sig);
        let (code, stdout, stderr, took) = child.finish(sent);
        assert_eq!(code, Some(105), "signal {sig}: {stderr}");
        assert!(took < std::time::Duration::from_secs(3), "took {took:?}");
        assert!(
            !stderr.contains("iteration ran") && !stderr.contains("teardown ran"),
            "{stderr}"
        );
        assert!(stdout.contains("TOTAL RESULTS"), "{stdout}");
    }
}

#[test]
fn the_first_signal_gives_running_iterations_their_graceful_stop_then_teardown_runs() {
    let ws = Workspace::new();
    ws.write(
        "t.lua",
        "options = { scenarios = { s = { executor = 'constant-vus', vus = 1, duration = '60s', gracefulStop = '1s' } } }\nfunction default() console.log('iterating') sleep(20) end\nfunction teardown() console.log('teardown ran') end\n",
    );
    let child = Child::start(&ws, "t.lua");
    child.wait_for("iterating");
    let sent = std::time::Instant::now();
    child.signal(libc::SIGTERM);
    let (code, stdout, stderr, took) = child.finish(sent);
    assert_eq!(code, Some(105), "{stderr}");
    // gracefulStop is 1 s: the sleeping iterations are interrupted then, not after 20 s.
    assert!(
        took >= std::time::Duration::from_millis(900) && took < std::time::Duration::from_secs(4),
        "took {took:?}"
    );
    assert!(stderr.contains("teardown ran"), "{stderr}");
    assert!(stdout.contains("1 interrupted iterations"), "{stdout}");
}

#[test]
fn a_signal_in_teardown_cuts_it_short_and_a_second_signal_exits_at_once() {
    let ws = Workspace::new();
    ws.write(
        "t.lua",
        "options = { iterations = 1 }\nfunction default() end\nfunction teardown() console.log('in teardown') sleep(30) end\n",
    );
    let child = Child::start(&ws, "t.lua");
    child.wait_for("in teardown");
    let sent = std::time::Instant::now();
    child.signal(libc::SIGINT);
    let (code, stdout, stderr, took) = child.finish(sent);
    assert_eq!(code, Some(105), "{stderr}");
    assert!(took < std::time::Duration::from_secs(3), "took {took:?}");
    assert!(stdout.contains("TOTAL RESULTS"), "{stdout}");

    ws.write(
        "u.lua",
        "options = { scenarios = { s = { executor = 'constant-vus', vus = 1, duration = '60s', gracefulStop = '30s' } } }\nfunction default() console.log('iterating') while true do end end\n",
    );
    let child = Child::start(&ws, "u.lua");
    child.wait_for("iterating");
    child.signal(libc::SIGINT);
    child.wait_for("stopping");
    let sent = std::time::Instant::now();
    child.signal(libc::SIGINT);
    let (code, _, stderr, took) = child.finish(sent);
    assert_eq!(code, Some(105), "{stderr}");
    assert!(took < std::time::Duration::from_secs(2), "took {took:?}");
}

#[test]
fn a_memory_bomb_fails_its_own_iterations_and_the_other_vus_go_on() {
    let ws = Workspace::new();
    ws.write(
        "t.lua",
        "options = { scenarios = { s = { executor = 'constant-vus', vus = 2, duration = '2s' } } }\nlocal steady = Counter('steady')\nfunction default()\n  if __VU == 1 then\n    local t = {}\n    for i = 1, 1e9 do t[i] = string.rep('x', 64) .. i end\n  else\n    steady:add(1)\n    sleep(0.05)\n  end\nend\n",
    );
    // One worker: the bomb shares its Lua state with the steady VU.
    let r = ws.run("t.lua", &["--workers", "1", "--max-memory", "128MB"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("not enough memory"), "{}", r.stderr);
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    let steady = r.metric("steady", "count");
    assert!(steady >= 10.0, "the steady VU ran {steady} iterations");
    let r = ws.run("t.lua", &["--max-memory", "lots"]);
    assert_eq!(r.code, 104, "{}", r.stderr);
    assert!(r.stderr.contains("--max-memory"), "{}", r.stderr);
}
