//! The Lua side in-process, at its seam: a real Lua state with the prelude and the k6
//! modules, one VU running one iteration at a time, and the samples it recorded read back
//! from the metric channel with their tags. HTTP goes to a small server on 127.0.0.1 that
//! answers every request the same way.

use super::*;
use crate::exec::{Outcome, RunState, ScenarioRun, Vu, VuFactory};
use crate::http::{ConnectionPolicy, Net, Resolver, Tls, TlsOptions};
use crate::metrics::{Builtins, Registry, VuGauges};
use std::cell::Cell;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};

/// One recorded sample: metric name, its tags (sorted), value.
type Recorded = (String, Vec<(String, String)>, f64);

struct Harness {
    script: Script,
    rx: crossbeam_channel::Receiver<Vec<Sample>>,
    interner: Arc<TagInterner>,
    registry: Arc<Registry>,
    _dir: tempfile::TempDir,
}

impl Harness {
    /// Loads `source` as `t.lua` and connects it, as a worker does.
    fn load(source: &str) -> Result<Harness> {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("t.lua");
        std::fs::write(&path, source).expect("write script");
        let registry = Arc::new(Registry::default());
        let builtins = Builtins::register(&registry);
        let interner = Arc::new(TagInterner::default());
        let (tx, rx) = crossbeam_channel::unbounded();
        let cfg = ScriptConfig {
            script_path: path,
            env: vec![("TARGET".into(), "here".into())],
            seed: Some(7),
            registry: registry.clone(),
            builtins,
            run: RunState::new(Arc::new(VuGauges::default())),
            started: std::time::Instant::now(),
            stamp_samples: false,
            time_scale: 1.0,
            snapshots: None,
            unsafe_lua: false,
            memory_limit: 256 << 20,
        };
        let script = Script::load(cfg, tx, interner.clone(), 0)?;
        script.connect(crate::http::Settings {
            policy: ConnectionPolicy::Shared,
            user_agent: "engine-test".into(),
            discard_response_bodies: false,
            no_cookies_reset: false,
            net: Arc::new(Net {
                resolver: Resolver::new(Default::default()).expect("resolver"),
                tls: Tls::new(TlsOptions::default()).expect("tls"),
                h2c: false,
            }),
            max_connections: None,
            throw: false,
            max_redirects: None,
        })?;
        Ok(Harness {
            script,
            rx,
            interner,
            registry,
            _dir: dir,
        })
    }

    /// Runs `iterations` iterations of `default` on VU 1 of scenario `s` (tagged team=a).
    fn iterate(&self, iterations: usize) -> Vec<Outcome> {
        self.run(None, iterations)
    }

    /// Runs `iterations` iterations as [`Harness::iterate`] does, after a first one that is
    /// cut (its future dropped, as a deadline drops a VU's task) after `cut`, if given.
    fn run(&self, cut: Option<std::time::Duration>, iterations: usize) -> Vec<Outcome> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let local = tokio::task::LocalSet::new();
        local.block_on(&rt, async {
            let factory = self
                .script
                .vu_factory(&["default"], &serde_json::json!({"token": "x"}))
                .expect("factory");
            let sc = std::rc::Rc::new(ScenarioRun {
                index: 0,
                name: "s".into(),
                executor: "shared-iterations",
                exec: "default".into(),
                tags: vec![("team".into(), "a".into())],
                env: Vec::new(),
                iterations_in_test: Arc::new(AtomicU64::new(0)),
                warned_short_of_vus: Arc::default(),
                vu_offset: 0,
                started: Cell::new(None),
            });
            let mut vu = factory.create(1, &sc).expect("VU");
            if let Some(cut) = cut {
                let cut_short = tokio::time::timeout(cut, vu.iterate(&sc)).await;
                assert!(
                    cut_short.is_err(),
                    "the first iteration ended before its cut"
                );
            }
            let mut out = Vec::new();
            for _ in 0..iterations {
                out.push(vu.iterate(&sc).await);
            }
            out
        })
    }

    /// Every sample recorded so far.
    fn samples(&self) -> Vec<Recorded> {
        self.script.flush_metrics();
        let mut out = Vec::new();
        while let Ok(batch) = self.rx.try_recv() {
            for s in batch {
                let name = self.registry.def(s.metric).name.clone();
                out.push((name, (*self.interner.get(s.tags)).clone(), s.value));
            }
        }
        out
    }

    /// Samples of one metric (drains the channel, as [`Harness::samples`] does).
    fn of(&self, metric: &str) -> Vec<(Vec<(String, String)>, f64)> {
        self.samples()
            .into_iter()
            .filter(|s| s.0 == metric)
            .map(|s| (s.1, s.2))
            .collect()
    }

    /// A global the script set, as text.
    fn global(&self, name: &str) -> String {
        let v: mlua::Value = self.script.lua.globals().get(name).expect("global");
        v.to_string()
            .unwrap_or_default()
            .lines()
            .next()
            .unwrap_or("")
            .to_string()
    }
}

fn tags(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    v.sort();
    v
}

#[test]
fn checks_record_one_sample_each_with_the_vu_base_tags() {
    let h = Harness::load(
        r#"
function default()
  check(1, { ["is one"] = function(v) return v == 1 end, ["is two"] = function(v) return v == 2 end })
  check(nil, { ["tagged"] = true }, { kind = "x" })
end"#,
    )
    .unwrap();
    assert_eq!(h.iterate(1), vec![Outcome::Completed]);
    let mut checks = h.of("checks");
    checks.sort_by(|a, b| a.0.cmp(&b.0));
    let base = [("group", ""), ("scenario", "s"), ("team", "a")];
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut t = base.to_vec();
        t.extend_from_slice(extra);
        tags(&t)
    };
    assert_eq!(
        checks,
        vec![
            (with(&[("check", "is one")]), 1.0),
            (with(&[("check", "is two")]), 0.0),
            (with(&[("check", "tagged"), ("kind", "x")]), 1.0),
        ]
    );
}

/// `check` is a C function: a predicate may still yield (a sleep, an HTTP request) and the
/// loop goes on after it; a check with tags finds its tag set by content; what it returns
/// and how it refuses bad arguments (at the script's line) are k6's.
#[test]
fn checks_go_on_after_a_predicate_that_yields_and_refuse_bad_arguments_at_the_line() {
    let h = Harness::load(
        r#"
function default()
  local all = check(5, { ["sleeps first"] = function(v) sleep(0.01); return v == 5 end })
  local some = check(5, { a = true, b = false, c = function() end })
  for i = 1, 3 do check(1, { tagged = true }, { step = (i == 3) and "two" or "one" }) end
  results = tostring(all) .. " " .. tostring(some)
  local ok, e = pcall(check, 1, "not a table")
  bad_checks = e
  ok, e = pcall(function() check(1, { x = true }, "tags") end)
  bad_tags = e
end"#,
    )
    .unwrap();
    assert_eq!(h.iterate(1), vec![Outcome::Completed]);
    assert_eq!(h.global("results"), "true false");
    let mut checks: Vec<Recorded> = h
        .of("checks")
        .into_iter()
        .map(|(t, v)| {
            let name = t.iter().find(|(k, _)| k == "check").unwrap().1.clone();
            let own = t.into_iter().filter(|(k, _)| k == "step").collect();
            (name, own, v)
        })
        .collect();
    checks.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    let step = |s: &str| vec![("step".to_string(), s.to_string())];
    assert_eq!(
        checks,
        vec![
            ("a".into(), vec![], 1.0),
            ("b".into(), vec![], 0.0),
            ("c".into(), vec![], 0.0),
            ("sleeps first".into(), vec![], 1.0),
            ("tagged".into(), step("one"), 1.0),
            ("tagged".into(), step("one"), 1.0),
            ("tagged".into(), step("two"), 1.0),
        ]
    );
    assert!(
        h.global("bad_checks")
            .contains("check: expected a table of checks, got string"),
        "{}",
        h.global("bad_checks")
    );
    assert!(
        h.global("bad_tags")
            .contains("t.lua:9: check: tags must be a table, got string"),
        "{}",
        h.global("bad_tags")
    );
}

/// The group tag of every sample of `metric` (of the check named `check`, if given).
fn groups_of(samples: &[Recorded], metric: &str, check: Option<&str>) -> Vec<String> {
    samples
        .iter()
        .filter(|s| s.0 == metric)
        .filter(|s| check.is_none_or(|c| s.1.iter().any(|t| t.0 == "check" && t.1 == c)))
        .filter_map(|s| s.1.iter().find(|t| t.0 == "group").map(|t| t.1.clone()))
        .collect()
}

#[test]
fn groups_nest_their_path_into_tags_and_time_themselves() {
    let h = Harness::load(
        r#"
function default()
  group("a", function()
    group("b", function() check(true, { inner = true }) end)
  end)
  check(true, { outer = true })
end"#,
    )
    .unwrap();
    h.iterate(1);
    let samples = h.samples();
    let group_of = |metric: &str, check: Option<&str>| groups_of(&samples, metric, check);
    assert_eq!(group_of("checks", Some("inner")), vec!["::a::b"]);
    assert_eq!(group_of("checks", Some("outer")), vec![""]);
    assert_eq!(group_of("group_duration", None), vec!["::a::b", "::a"]);
    assert_eq!(group_of("iterations", None), vec![""]);
}

/// An iteration cut inside a group leaves nothing of it behind: the VU's next iteration
/// records at the top level (its base tag set was cached with the group's path).
#[test]
fn an_iteration_cut_inside_a_group_leaves_no_group_tag_behind() {
    let h = Harness::load(
        r#"
local n = 0
function default()
  n = n + 1
  if n == 1 then
    group("g", function()
      check(true, { inside = true })
      sleep(10)
    end)
  end
  check(true, { after = true })
end"#,
    )
    .unwrap();
    let cut = std::time::Duration::from_millis(100);
    assert_eq!(h.run(Some(cut), 1), vec![Outcome::Completed]);
    let samples = h.samples();
    let of = |metric: &str| groups_of(&samples, metric, None);
    assert_eq!(of("checks"), vec!["::g", ""]);
    // The cut iteration records no `iterations` sample; the next one's is at the top level.
    assert_eq!(of("iterations"), vec![""]);
    assert_eq!(of("iteration_duration"), vec![""]);
}

#[test]
fn custom_metrics_add_with_merged_tags_and_refuse_bad_values() {
    let h = Harness::load(
        r#"
local c = Counter("jobs")
local r = Rate("ok_rate")
local t = Trend("lat", true)
function default()
  c:add(2, { step = "one" })
  c.add(3)
  r:add(true)
  r:add(false)
  t:add("12.5")
  local ok, e = pcall(function() c:add(nil) end)
  bad_value = e
  ok, e = pcall(function() Counter("late") end)
  late_metric = e
end"#,
    )
    .unwrap();
    assert_eq!(h.iterate(1), vec![Outcome::Completed]);
    let samples = h.samples();
    let values =
        |m: &str| -> Vec<f64> { samples.iter().filter(|s| s.0 == m).map(|s| s.2).collect() };
    assert_eq!(values("jobs"), vec![2.0, 3.0]);
    assert_eq!(values("ok_rate"), vec![1.0, 0.0]);
    assert_eq!(values("lat"), vec![12.5]);
    let first_jobs = samples.iter().find(|s| s.0 == "jobs").unwrap();
    assert!(first_jobs.1.contains(&("step".into(), "one".into())));
    assert!(first_jobs.1.contains(&("team".into(), "a".into())));
    assert!(
        h.global("bad_value")
            .contains("t.lua:11: metric add: value is nil"),
        "{}",
        h.global("bad_value")
    );
    assert!(h
        .global("late_metric")
        .contains("custom metrics must be created in init code"));
}

#[test]
fn errors_fail_the_iteration_and_abort_stops_the_test() {
    let h = Harness::load(
        r#"
local n = 0
function default()
  n = n + 1
  if n == 1 then error("boom") end
  if n == 2 then require("k6/execution").test.abort("enough") end
end"#,
    )
    .unwrap();
    let out = h.iterate(3);
    assert_eq!(
        out,
        vec![
            Outcome::Failed,
            Outcome::Aborted("enough".into()),
            Outcome::Completed
        ]
    );
    // The failed and the completed iteration count in `iterations` (k6 v1.1); the aborted
    // one was interrupted.
    assert_eq!(h.of("iterations").len(), 2);
}

/// `sleep` yields from C: from a script's own coroutine too (forwarded to the driver), a
/// string of seconds sleeps, and what is not a number only lets others run (k6: 0).
#[test]
fn sleep_yields_from_a_scripts_own_coroutine_and_takes_what_tonumber_takes() {
    let h = Harness::load(
        r#"
function default()
  local f = coroutine.wrap(function() sleep("0.05"); return 7 end)
  check(f(), { seven = function(v) return v == 7 end })
  sleep({})
  sleep(nil)
end"#,
    )
    .unwrap();
    assert_eq!(h.iterate(1), vec![Outcome::Completed]);
    let samples = h.samples();
    let of = |m: &str| {
        samples
            .iter()
            .filter(|s| s.0 == m)
            .map(|s| s.2)
            .collect::<Vec<_>>()
    };
    assert_eq!(of("checks"), vec![1.0]);
    // One real sleep: one lag sample; the iteration lasted at least its 50 ms.
    assert_eq!(of("vu_sleep_lag").len(), 1);
    assert!(
        of("iteration_duration")[0] >= 50.0,
        "{:?}",
        of("iteration_duration")
    );
}

#[test]
fn vu_code_primitives_refuse_init_code_and_init_errors_name_the_line() {
    let e = Harness::load("http.get('http://127.0.0.1:1/')")
        .err()
        .unwrap();
    assert!(
        e.message.contains("can only be called in VU code"),
        "{}",
        e.message
    );
    // sleep is a C function: its error still points at the script's line.
    let e = Harness::load("local x = 1\nsleep(x)").err().unwrap();
    assert!(
        e.message
            .contains("t.lua:2: sleep() can only be called in VU code"),
        "{}",
        e.message
    );
    let e = Harness::load("local x = 1\nlocal y = nil + x")
        .err()
        .unwrap();
    assert!(e.message.contains("t.lua:2:"), "{}", e.message);
    assert_eq!(e.code, crate::error::ExitCode::ScriptException);
    let e = Harness::load("function default() group('a::b', function() end) end").unwrap();
    assert_eq!(e.iterate(1), vec![Outcome::Failed]);
}

#[test]
fn env_setup_data_vu_and_iter_are_visible() {
    let h = Harness::load(
        r#"
init_vu = __VU
function default(data)
  seen = string.format("%s %s %d %d", __ENV.TARGET, data.token, __VU, __ITER)
  misses = tostring(no_such_global) .. " " .. tostring(_G[1]) .. " " .. tostring(_G[true])
end"#,
    )
    .unwrap();
    h.iterate(2);
    assert_eq!(h.global("seen"), "here x 1 1");
    // Init code runs outside any VU; other globals that are not there are nil.
    assert_eq!(h.global("init_vu"), "0");
    assert_eq!(h.global("misses"), "nil nil nil");
}

/// A server on 127.0.0.1 that answers every request with `response`; counts requests.
fn canned_server(response: &'static str) -> (String, Arc<AtomicU64>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().unwrap());
    let count = Arc::new(AtomicU64::new(0));
    let seen = count.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { return };
            let seen = seen.clone();
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let Ok(n) = conn.read(&mut chunk) else { return };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    // Requests in these tests have no body.
                    while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        buf.drain(..end + 4);
                        seen.fetch_add(1, Ordering::SeqCst);
                        if conn.write_all(response.as_bytes()).is_err() {
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
fn http_params_tags_and_lazy_response_fields() {
    let (url, count) = canned_server(
        "HTTP/1.1 201 Created\r\nContent-Length: 13\r\nX-Test: yes\r\nX-Test: again\r\n\
         Set-Cookie: sid=abc; Path=/\r\n\r\n{\"a\":{\"b\":7}}",
    );
    let h = Harness::load(&format!(
        r#"
function default()
  local res = http.get("{url}/items/42", {{ tags = {{ name = "item" }}, headers = {{ ["X-Req"] = 1 }}, timeout = "5s" }})
  got = string.format("%d %s %s %s %d %s %s", res.status, res.status_text, res.headers["X-Test"],
    res.cookies.sid[1].value, res:json("a.b"), res.request.method, res.proto)
end"#
    ))
    .unwrap();
    assert_eq!(h.iterate(1), vec![Outcome::Completed]);
    assert_eq!(count.load(Ordering::SeqCst), 1);
    assert_eq!(
        h.global("got"),
        "201 201 Created yes, again abc 7 GET HTTP/1.1"
    );
    let samples = h.samples();
    let of = |m: &str| -> Vec<(Vec<(String, String)>, f64)> {
        samples
            .iter()
            .filter(|s| s.0 == m)
            .map(|s| (s.1.clone(), s.2))
            .collect()
    };
    let reqs = of("http_reqs");
    assert_eq!(reqs.len(), 1);
    let t = &reqs[0].0;
    for pair in [
        ("name", "item"),
        ("url", "item"),
        ("method", "GET"),
        ("status", "201"),
        ("expected_response", "true"),
        ("scenario", "s"),
    ] {
        assert!(
            t.contains(&(pair.0.into(), pair.1.into())),
            "{pair:?} in {t:?}"
        );
    }
    assert_eq!(of("http_req_failed"), vec![(t.clone(), 0.0)]);
}

/// `res.timings` is a userdata of eight numbers: read by name (the numbers the samples
/// carry), listed by `pairs` in k6's order, written as a JSON object by `json.encode` and
/// `tostring`, read-only; a batch's responses have the same.
#[test]
fn response_timings_read_by_name_list_in_order_and_encode_as_an_object() {
    let (url, _) = canned_server("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    let h = Harness::load(&format!(
        r#"
function default()
  local res = http.get("{url}/a")
  local t = res.timings
  duration, waiting, missing = t.duration, t.waiting, tostring(t.nope)
  local names = {{}}
  for k, v in pairs(t) do names[#names + 1] = k .. (v == t[k] and "" or "!") end
  listed = table.concat(names, " ")
  local back = json.decode(json.encode({{ t = t }})).t
  same = tostring(back.duration == t.duration and back.looking_up == t.looking_up)
    .. " " .. tostring(tostring(t) == json.encode(t))
  local ok, e = pcall(function() t.duration = 0 end)
  write = e
  local b = http.batch({{ {{ "GET", "{url}/b" }} }})
  batch = tostring(b[1].timings.duration == b[1].timings.duration and b[1].timings.duration > 0)
end"#
    ))
    .unwrap();
    assert_eq!(h.iterate(1), vec![Outcome::Completed]);
    assert_eq!(
        h.global("listed"),
        "blocked connecting tls_handshaking sending waiting receiving duration looking_up"
    );
    assert_eq!(h.global("missing"), "nil");
    assert_eq!(h.global("same"), "true true");
    assert_eq!(h.global("batch"), "true");
    assert!(
        h.global("write")
            .contains("t.lua:12: res.timings is read-only"),
        "{}",
        h.global("write")
    );
    let number = |name: &str| -> f64 {
        let v: mlua::Value = h.script.lua.globals().get(name).expect("global");
        v.as_f64().expect("a number")
    };
    let samples = h.samples();
    let first = |m: &str| samples.iter().find(|s| s.0 == m).map(|s| s.2);
    assert_eq!(first("http_req_duration"), Some(number("duration")));
    assert_eq!(first("http_req_waiting"), Some(number("waiting")));
    assert!(number("duration") > 0.0);
}

#[test]
fn bad_request_arguments_raise_at_the_script_line() {
    let h = Harness::load(
        r#"
function default()
  local ok, e = pcall(function() http.request("GE T", "http://127.0.0.1:1/") end)
  bad_method = e
  ok, e = pcall(function() http.get("http://127.0.0.1:1/", { timeout = "soon" }) end)
  bad_timeout = e
  ok, e = pcall(function() http.get("http://127.0.0.1:1/", { headers = { ["X-A"] = {} } }) end)
  bad_header = e
  ok, e = pcall(function() http.get("http://127.0.0.1:1/", { responseType = "xml" }) end)
  bad_type = e
end"#,
    )
    .unwrap();
    assert_eq!(h.iterate(1), vec![Outcome::Completed]);
    assert!(
        h.global("bad_method").contains("t.lua:3:"),
        "{}",
        h.global("bad_method")
    );
    assert!(h.global("bad_method").contains("invalid method"));
    assert!(h.global("bad_timeout").contains("params.timeout"));
    assert!(h.global("bad_header").contains("params.headers"));
    assert!(h.global("bad_type").contains("params.responseType"));
    assert!(h.of("http_reqs").is_empty(), "nothing was sent");
}

#[test]
fn the_sandbox_removes_programs_writes_c_code_and_debug_but_keeps_reading() {
    let h = Harness::load(
        r#"
local function try(f) local ok, e = pcall(f); return ok and "allowed" or tostring(e) end
refused = table.concat({
  try(function() local r = os.execute("true"); return r end),
  try(function() local r = io.popen("ls"); return r end),
  try(function() local r = io.open("x.txt", "w"); return r end),
  try(function() local r = package.loadlib("x", "y"); return r end),
  try(function() local r = debug.getinfo(1); return r end),
}, "\n")
local f = io.open(package.path:match("^([^?]*)") .. "t.lua", "r")
reads = tostring(f ~= nil) .. " " .. type(os.time()) .. " " .. type(debug.traceback)
binary = tostring((load(string.dump(function() end))))
function default() end
"#,
    )
    .unwrap();
    let refused: String = h.script.lua.globals().get("refused").unwrap();
    let lines: Vec<&str> = refused.lines().collect();
    for (line, name) in lines.iter().zip([
        "os.execute",
        "io.popen",
        "io.open(x.txt, w)",
        "package.loadlib",
        "debug.getinfo",
    ]) {
        assert!(
            line.contains(name) && line.contains("--unsafe-lua"),
            "{line}"
        );
        assert!(line.contains("t.lua:"), "located at the script: {line}");
    }
    assert_eq!(lines.len(), 5);
    assert_eq!(h.global("reads"), "true number function");
    assert_eq!(h.global("binary"), "nil");
}

#[test]
fn json_decode_never_panics_and_round_trips_what_it_encodes() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};
    let h = Harness::load(
        "function try_decode(s) return pcall(JSON.parse, s) end\nfunction round_trip(s) local v = JSON.parse(s); return JSON.stringify(v) end\nfunction default() end\n",
    )
    .unwrap();
    let try_decode: mlua::Function = h.script.lua.globals().get("try_decode").unwrap();
    let round_trip: mlua::Function = h.script.lua.globals().get("round_trip").unwrap();
    let mut runner = TestRunner::new(Config::with_cases(2000));
    runner
        .run(&proptest::collection::vec(any::<u8>(), 0..64), |bytes| {
            let s = h.script.lua.create_string(&bytes).unwrap();
            let _: (bool, mlua::Value) = try_decode.call(s).unwrap();
            Ok(())
        })
        .unwrap();
    // Objects of strings and integers survive decode + encode (as serde_json's value).
    runner
        .run(
            &proptest::collection::btree_map("[a-z]{1,6}", any::<i32>(), 0..6),
            |m| {
                let text = serde_json::to_string(&m).unwrap();
                let back: String = round_trip.call(text.clone()).unwrap();
                let a: serde_json::Value = serde_json::from_str(&text).unwrap();
                let b: serde_json::Value = serde_json::from_str(&back).unwrap();
                prop_assert_eq!(a, b);
                Ok(())
            },
        )
        .unwrap();
    // Every finite float comes back as the same number, as JSON.parse gives it (serde_json's
    // default parser was off by an ulp on 17-digit numbers such as 0.10223399999999999).
    let decode: mlua::Function = h.script.lua.load("return JSON.parse").eval().unwrap();
    runner
        .run(&any::<f64>(), |n| {
            prop_assume!(n.is_finite());
            let text = serde_json::to_string(&n).unwrap();
            let back: f64 = decode.call(text.clone()).unwrap();
            prop_assert_eq!(back.to_bits(), n.to_bits(), "{}", text);
            Ok(())
        })
        .unwrap();
    let exact: f64 = decode.call("0.10223399999999999").unwrap();
    assert_eq!(exact, 0.10223399999999999);
}

/// A value to build as a Lua value, for json.encode's property test.
#[derive(Debug, Clone)]
enum Tree {
    Str(Vec<u8>),
    Int(i64),
    Float(f64),
    Bool(bool),
    Null,
    List(Vec<Tree>),
    Map(Vec<(String, Tree)>),
    /// A list with one more key, or integer keys that are not a sequence.
    Mixed(Vec<Tree>, i64),
}

fn tree_to_lua(lua: &mlua::Lua, t: &Tree) -> mlua::Value {
    use mlua::Value;
    match t {
        Tree::Str(b) => Value::String(lua.create_string(b).unwrap()),
        Tree::Int(i) => Value::Integer(*i),
        Tree::Float(f) => Value::Number(*f),
        Tree::Bool(b) => Value::Boolean(*b),
        Tree::Null => Value::NULL,
        Tree::List(items) => {
            let t = lua.create_table().unwrap();
            for (i, item) in items.iter().enumerate() {
                t.raw_set(i + 1, tree_to_lua(lua, item)).unwrap();
            }
            Value::Table(t)
        }
        Tree::Map(pairs) => {
            let t = lua.create_table().unwrap();
            for (k, v) in pairs {
                t.raw_set(k.as_str(), tree_to_lua(lua, v)).unwrap();
            }
            Value::Table(t)
        }
        Tree::Mixed(items, key) => {
            let t = lua.create_table().unwrap();
            for (i, item) in items.iter().enumerate() {
                t.raw_set(i + 1, tree_to_lua(lua, item)).unwrap();
            }
            t.raw_set(*key, true).unwrap();
            Value::Table(t)
        }
    }
}

#[test]
fn json_encode_fast_path_writes_what_the_serde_path_writes() {
    use mlua::LuaSerdeExt;
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};
    let h =
        Harness::load("function enc(v) return pcall(json.encode, v) end\nfunction default() end\n")
            .unwrap();
    let lua = &h.script.lua;
    let enc: mlua::Function = lua.globals().get("enc").unwrap();
    let leaf = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..8).prop_map(Tree::Str),
        "[a-z\"\\\\\u{0}-\u{1f}é😀]{0,8}".prop_map(|s| Tree::Str(s.into_bytes())),
        any::<i64>().prop_map(Tree::Int),
        prop_oneof![any::<f64>(), Just(-0.0), Just(1.0), Just(1e300), Just(0.1)]
            .prop_map(Tree::Float),
        any::<bool>().prop_map(Tree::Bool),
        Just(Tree::Null),
    ];
    let tree = leaf.prop_recursive(4, 40, 5, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(Tree::List),
            proptest::collection::vec(("[a-z]{1,3}|é|\u{1}", inner.clone()), 0..5)
                .prop_map(Tree::Map),
            (proptest::collection::vec(inner, 0..3), -2i64..6).prop_map(|(v, k)| Tree::Mixed(v, k)),
        ]
    });
    let mut runner = TestRunner::new(Config::with_cases(3000));
    runner
        .run(&tree, |t| {
            let v = tree_to_lua(lua, &t);
            let serde = lua
                .from_value::<serde_json::Value>(v.clone())
                .map(|j| j.to_string());
            let (ok, out): (bool, mlua::Value) = enc.call(v).unwrap();
            match serde {
                Ok(text) => {
                    prop_assert!(ok, "serde wrote {text}, json.encode failed: {out:?}");
                    prop_assert_eq!(out.as_string().unwrap().to_str().unwrap().to_string(), text);
                }
                Err(_) => prop_assert!(!ok, "serde failed, json.encode wrote {out:?}"),
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn tagged_adds_find_their_tag_set_by_content_and_refuse_tags_that_are_not_a_table() {
    let h = Harness::load(
        r#"
local c = Counter("hits")
function default()
  for i = 1, 3 do
    c:add(1, { page = "a", n = 7 })
    local t = {}
    t.n = 7
    t.page = (i == 3) and "b" or "a"
    c:add(1, t)
  end
  c:add(1, { flag = true, ratio = 0.5 })
  local ok, e = pcall(function() c:add(1, "page=a") end)
  bad_tags = e
end"#,
    )
    .unwrap();
    assert_eq!(h.iterate(1), vec![Outcome::Completed]);
    let mut by_set: std::collections::BTreeMap<Vec<(String, String)>, f64> = Default::default();
    for (tags, v) in h.of("hits") {
        let mut own: Vec<_> = tags
            .into_iter()
            .filter(|(k, _)| ["page", "n", "flag", "ratio"].contains(&k.as_str()))
            .collect();
        own.sort();
        *by_set.entry(own).or_default() += v;
    }
    let pairs = |p: &[(&str, &str)]| -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    assert_eq!(by_set.get(&pairs(&[("n", "7"), ("page", "a")])), Some(&5.0));
    assert_eq!(by_set.get(&pairs(&[("n", "7"), ("page", "b")])), Some(&1.0));
    assert_eq!(
        by_set.get(&pairs(&[("flag", "true"), ("ratio", "0.5")])),
        Some(&1.0)
    );
    assert_eq!(by_set.len(), 3, "{by_set:?}");
    assert!(
        h.global("bad_tags")
            .contains("metric add: tags must be a table, got string"),
        "{}",
        h.global("bad_tags")
    );
}

/// A VU coroutine runs the script's function with no `xpcall` under it: when it dies of an
/// error, the driver describes the error value itself and adds the dead coroutine's
/// traceback. A message keeps its file:line, a thrown table reads as its JSON, nil as what
/// happened, an object as its `__tostring` (and a `__tostring` that raises as its own
/// error); every description names the script's frames.
#[test]
fn a_dead_coroutines_error_is_described_with_its_traceback() {
    let h = Harness::load(
        r#"
kind = 0
local function inner(k)
  if k == 1 then error("boom") end
  if k == 2 then error({ code = 5 }) end
  if k == 3 then error() end
  if k == 4 then error(setmetatable({}, { __tostring = function() return "custom" end })) end
  if k == 5 then local t = nil; return t.x end
  if k == 6 then error(setmetatable({}, { __tostring = function() error("nested") end })) end
  return "fine"
end
function setup() kind = kind + 1; local r = inner(kind); return r end
function default() end"#,
    )
    .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let local = tokio::task::LocalSet::new();
    let setup = || {
        let call = h.script.call_hook(
            super::hooks::Hook::Setup,
            None,
            std::time::Duration::from_secs(5),
        );
        local.block_on(&rt, call).expect("setup is defined")
    };
    for (first_line, raised_at) in [
        ("setup() failed: t.lua:4: boom", "t.lua:4: in "),
        (r#"setup() failed: error: {"code":5}"#, "t.lua:5: in "),
        (
            "setup() failed: error() was called without a message",
            "t.lua:6: in ",
        ),
        ("setup() failed: custom", "t.lua:7: in "),
        (
            "setup() failed: t.lua:8: attempt to index a nil value (local 't')",
            "t.lua:8: in ",
        ),
        ("setup() failed: t.lua:9: nested", "t.lua:9: in "),
    ] {
        let err = setup().expect_err("setup raised").to_string();
        let err = err.replace(&format!("{}/", h._dir.path().display()), "");
        let (first, rest) = err.split_once('\n').unwrap_or((&err, ""));
        assert_eq!(first, first_line, "{err}");
        assert!(rest.contains(raised_at), "{err}");
        assert!(rest.contains("t.lua:12: in function 'setup'"), "{err}");
    }
    assert_eq!(setup().unwrap(), serde_json::json!("fine"));
}
