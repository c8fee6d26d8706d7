//! `engine serve` over real HTTP: funnel semantics, bad input, concurrency, durability.

use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

struct Server {
    base: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    done: Option<tokio::task::JoinHandle<()>>,
    app: Arc<engine::target::routes::App>,
}

impl Server {
    async fn start(db: Option<&std::path::Path>, session_ttl: Duration) -> Server {
        let app = engine::target::open(db, Duration::from_secs(1800), session_ttl).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let a = app.clone();
        let done = tokio::spawn(async move {
            engine::target::run(listener, a, async {
                let _ = rx.await;
            })
            .await
        });
        Server {
            base,
            stop: Some(tx),
            done: Some(done),
            app,
        }
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.done.take().unwrap().await.unwrap();
    }
}

async fn beacon(c: &reqwest::Client, base: &str, body: Value) -> (u16, Value) {
    let r = c
        .post(format!("{base}/track"))
        .body(body.to_string())
        .header("Content-Type", "application/json")
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn get(c: &reqwest::Client, url: String) -> Value {
    c.get(url).send().await.unwrap().json().await.unwrap()
}

fn ev(kind: &str, page: &str, session: &str) -> Value {
    json!({ "type": kind, "page": page, "session_id": session, "source": "k6-test" })
}

#[tokio::test]
async fn bounce_storm_cycle_leaves_exactly_one_net_bounce_per_session() {
    let s = Server::start(None, Duration::from_secs(60)).await;
    let c = reqwest::Client::new();
    for i in 0..20 {
        let sid = format!("storm-{i}");
        for kind in [
            "funnel_enter",
            "funnel_exit",
            "funnel_reenter",
            "funnel_reexit",
            "funnel_reenter",
            "funnel_reexit",
        ] {
            assert_eq!(beacon(&c, &s.base, ev(kind, "webinar", &sid)).await.0, 200);
        }
    }
    let f = get(&c, format!("{}/funnel", s.base)).await;
    assert_eq!(f["steps"]["webinar"]["bounces"], 20);
    assert_eq!(f["steps"]["webinar"]["entries"], 20);
    assert_eq!(f["steps"]["webinar"]["reenters"], 40);
    let st = get(&c, format!("{}/stats", s.base)).await;
    assert_eq!(st["pending_bounces"], 20);
    assert_eq!(st["live_sessions"], 0);
    s.stop().await;
}

#[tokio::test]
async fn progression_clears_bounces_and_completions_stay_separate() {
    let s = Server::start(None, Duration::from_secs(60)).await;
    let c = reqwest::Client::new();
    // Three sessions reach congrats; two go on to brand-steps (congrats complete); one of
    // those completes the missions.
    for i in 0..3 {
        let sid = format!("j{i}");
        for page in ["website", "tutorial", "webinar", "contract", "congrats"] {
            beacon(&c, &s.base, ev("funnel_enter", page, &sid)).await;
            if page == "congrats" && i < 2 {
                beacon(&c, &s.base, ev("funnel_complete", page, &sid)).await;
            }
            beacon(&c, &s.base, ev("funnel_exit", page, &sid)).await;
        }
        if i < 2 {
            beacon(&c, &s.base, ev("funnel_enter", "brand-steps", &sid)).await;
            if i == 0 {
                beacon(&c, &s.base, ev("funnel_complete", "brand-steps", &sid)).await;
            }
            beacon(&c, &s.base, ev("funnel_exit", "brand-steps", &sid)).await;
        }
    }
    let f = get(&c, format!("{}/funnel?source=k6-test", s.base)).await;
    for page in ["website", "tutorial", "webinar", "contract"] {
        assert_eq!(
            f["steps"][page]["bounces"], 0,
            "{page}: progress is not a bounce"
        );
    }
    assert_eq!(
        f["steps"]["congrats"]["bounces"], 1,
        "the session that left at congrats"
    );
    assert_eq!(f["steps"]["brand-steps"]["bounces"], 2);
    assert_eq!(f["steps"]["congrats"]["completes"], 2);
    assert_eq!(f["steps"]["brand-steps"]["completes"], 1);
    assert_eq!(f["congrats_conversion"], 0.6667);
    assert_eq!(f["brand_missions_completion"], 0.5);
    assert_eq!(f["conversions"]["congrats_to_brand-steps"], 0.6667);
    let other = get(&c, format!("{}/funnel?exclude_source_prefix=k6-", s.base)).await;
    assert_eq!(other["steps"]["website"]["entries"], 0);
    s.stop().await;
}

#[tokio::test]
async fn live_sessions_drop_to_zero_after_exits_and_after_the_ttl() {
    let s = Server::start(None, Duration::from_millis(800)).await;
    let c = reqwest::Client::new();
    beacon(&c, &s.base, ev("funnel_enter", "website", "a")).await;
    beacon(&c, &s.base, ev("heartbeat", "tutorial", "b")).await;
    let st = get(&c, format!("{}/stats", s.base)).await;
    assert_eq!(st["live_sessions"], 2);
    assert_eq!(st["live_by_page"]["tutorial"], 1);
    beacon(&c, &s.base, ev("funnel_exit", "website", "a")).await;
    assert_eq!(
        get(&c, format!("{}/stats", s.base)).await["live_sessions"],
        1
    );
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(
        get(&c, format!("{}/stats", s.base)).await["live_sessions"],
        0
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_beacons_give_exact_totals() {
    let s = Server::start(None, Duration::from_secs(60)).await;
    let mut tasks = Vec::new();
    for t in 0..50 {
        let base = s.base.clone();
        tasks.push(tokio::spawn(async move {
            let c = reqwest::Client::new();
            for i in 0..40 {
                let sid = format!("c{t}-{i}");
                assert_eq!(
                    beacon(&c, &base, ev("funnel_enter", "website", &sid))
                        .await
                        .0,
                    200
                );
                assert_eq!(
                    beacon(&c, &base, ev("funnel_exit", "website", &sid))
                        .await
                        .0,
                    200
                );
                assert_eq!(
                    beacon(&c, &base, ev("funnel_enter", "tutorial", &sid))
                        .await
                        .0,
                    200
                );
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let c = reqwest::Client::new();
    let f = get(&c, format!("{}/funnel", s.base)).await;
    assert_eq!(f["steps"]["website"]["entries"], 2000);
    assert_eq!(f["steps"]["website"]["exits"], 2000);
    assert_eq!(f["steps"]["website"]["bounces"], 0);
    assert_eq!(f["steps"]["tutorial"]["entries"], 2000);
    assert_eq!(
        get(&c, format!("{}/health", s.base)).await["events_accepted"],
        6000
    );
    s.stop().await;
}

#[tokio::test]
async fn bad_input_is_4xx_and_moves_no_counter() {
    let s = Server::start(None, Duration::from_secs(60)).await;
    let c = reqwest::Client::new();
    let big = json!({ "type": "funnel_enter", "page": "website", "session_id": "x", "pad": "a".repeat(17 * 1024) });
    let cases = [
        (r#"{"type": "funnel_enter", "page": "website""#.to_string(), 400, "malformed"),
        (json!({ "page": "website", "session_id": "x" }).to_string(), 400, "missing field: type"),
        (json!({ "type": "funnel_enter", "session_id": "x" }).to_string(), 400, "missing field: page"),
        (json!({ "type": "funnel_enter", "page": "website" }).to_string(), 400, "missing field: session_id"),
        (json!({ "type": "nope", "page": "website", "session_id": "x" }).to_string(), 400, "unknown type"),
        (json!({ "type": "funnel_enter", "page": "home", "session_id": "x" }).to_string(), 400, "unknown page"),
        (json!({ "type": "funnel_enter", "page": "website", "session_id": 7 }).to_string(), 400, "must be a string"),
        (json!({ "type": "funnel_exit", "page": "website", "session_id": "x", "time_on_page": "1s" }).to_string(), 400, "time_on_page"),
        (big.to_string(), 413, "larger than"),
    ];
    for (body, status, needle) in cases {
        let r = c
            .post(format!("{}/track", s.base))
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), status, "{needle}");
        let v: Value = r.json().await.unwrap();
        assert!(
            v["error"].as_str().unwrap().contains(needle),
            "{needle}: {v}"
        );
    }
    let h = get(&c, format!("{}/health", s.base)).await;
    assert_eq!(h["events_accepted"], 0);
    assert_eq!(h["events_rejected"], 9);
    assert_eq!(
        get(&c, format!("{}/funnel", s.base)).await["steps"]["website"]["entries"],
        0
    );
    assert_eq!(
        c.get(format!("{}/nope", s.base))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        404
    );
    assert_eq!(
        c.get(format!("{}/track", s.base))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        405
    );
    s.stop().await;
}

#[tokio::test]
async fn cors_preflight_and_origin() {
    let s = Server::start(None, Duration::from_secs(60)).await;
    let c = reqwest::Client::new();
    let r = c
        .request(reqwest::Method::OPTIONS, format!("{}/track", s.base))
        .header("Origin", "https://k6-load-test.pages.dev")
        .header("Access-Control-Request-Method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://k6-load-test.pages.dev"
    );
    assert!(r.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .contains("POST"));
    let r = c
        .post(format!("{}/track", s.base))
        .header("Origin", "https://a.example")
        .body(ev("heartbeat", "website", "z").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://a.example"
    );
    s.stop().await;
}

#[tokio::test]
async fn a_restart_rebuilds_the_same_funnel_from_the_log_and_keeps_resets() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("events.db");
    let c = reqwest::Client::new();
    let s = Server::start(Some(&db), Duration::from_secs(60)).await;
    for i in 0..30 {
        let sid = format!("r{i}");
        beacon(&c, &s.base, ev("funnel_enter", "website", &sid)).await;
        beacon(&c, &s.base, ev("funnel_exit", "website", &sid)).await;
        if i % 3 == 0 {
            beacon(&c, &s.base, ev("funnel_reenter", "website", &sid)).await;
            beacon(&c, &s.base, ev("funnel_enter", "tutorial", &sid)).await;
        }
    }
    let mut other = ev("funnel_enter", "website", "old");
    other["source"] = json!("organic");
    beacon(&c, &s.base, other).await;
    let before = get(&c, format!("{}/funnel", s.base)).await;
    let stats_before = get(&c, format!("{}/stats", s.base)).await;
    let app = s.app.clone();
    s.stop().await;
    drop(app);

    let s = Server::start(Some(&db), Duration::from_secs(60)).await;
    let after = get(&c, format!("{}/funnel", s.base)).await;
    assert_eq!(before, after);
    assert_eq!(
        get(&c, format!("{}/stats", s.base)).await["pending_bounces"],
        stats_before["pending_bounces"]
    );
    let day = after["date"].as_str().unwrap().to_string();
    let r = c
        .delete(format!("{}/funnel?date={day}&source=k6-test", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        get(&c, format!("{}/funnel", s.base)).await["steps"]["website"]["entries"],
        1
    );
    let app = s.app.clone();
    s.stop().await;
    drop(app);

    let s = Server::start(Some(&db), Duration::from_secs(60)).await;
    assert_eq!(
        get(&c, format!("{}/funnel", s.base)).await["steps"]["website"]["entries"],
        1,
        "the reset survives a restart"
    );
    s.stop().await;
}

#[tokio::test]
async fn a_bad_date_is_400_and_a_declared_oversized_body_is_refused_before_it_is_sent() {
    let s = Server::start(None, Duration::from_secs(60)).await;
    let c = reqwest::Client::new();
    let r = c
        .get(format!("{}/funnel?date=notadate", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let v: Value = r.json().await.unwrap();
    assert!(v["error"].as_str().unwrap().contains("YYYY-MM-DD"), "{v}");
    // Only the head, declaring 10 MB: the answer must come without a byte of the body.
    let addr = s.base.trim_start_matches("http://").to_string();
    let head = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut conn = std::net::TcpStream::connect(addr).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        conn.write_all(
            b"POST /track HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10000000\r\n\r\n",
        )
        .unwrap();
        let mut buf = [0u8; 512];
        let n = conn.read(&mut buf).unwrap_or(0);
        String::from_utf8_lossy(&buf[..n]).into_owned()
    })
    .await
    .unwrap();
    assert!(head.starts_with("HTTP/1.1 413"), "{head:?}");
    s.stop().await;
}

/// One POST /track on a kept-alive connection; the status, or None if the connection died.
fn post_beacon(conn: &mut std::net::TcpStream, body: &str) -> Option<u16> {
    use std::io::{Read, Write};
    let req = format!(
        "POST /track HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    conn.write_all(req.as_bytes()).ok()?;
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&got[..end]).to_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap_or(0));
            if got.len() >= end + 4 + len {
                return head.get(9..12)?.parse().ok();
            }
        }
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return None,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// Starts `engine serve` on a free port with this log; its URL and the events it replayed.
fn serve_process(db: &std::path::Path) -> (std::process::Child, String, u64) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_engine"))
        .args(["serve", "--listen", "127.0.0.1:0", "--db"])
        .arg(db)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    // "engine serve: listening on http://ADDR (event log: ..., N events replayed)"
    let url = line.split_whitespace().nth(4).unwrap().to_string();
    let replayed = line
        .split(", ")
        .last()
        .and_then(|t| t.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    (child, url, replayed)
}

#[test]
fn kill_9_while_beacons_are_acknowledged_loses_none_and_duplicates_none() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("funnel.db");
    let (mut server, url, replayed) = serve_process(&db);
    assert_eq!(replayed, 0);
    let addr = url.trim_start_matches("http://").to_string();
    let acked = Arc::new(AtomicU64::new(0));
    let sent = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..4)
        .map(|c| {
            let (addr, acked, sent, stop) =
                (addr.clone(), acked.clone(), sent.clone(), stop.clone());
            std::thread::spawn(move || {
                let Ok(mut conn) = std::net::TcpStream::connect(&addr) else {
                    return;
                };
                for i in 0.. {
                    if stop.load(SeqCst) {
                        return;
                    }
                    let body = ev("funnel_enter", "website", &format!("kill9-{c}-{i}")).to_string();
                    sent.fetch_add(1, SeqCst);
                    match post_beacon(&mut conn, &body) {
                        Some(200) => {
                            acked.fetch_add(1, SeqCst);
                        }
                        _ => return, // the server is gone
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(400));
    server.kill().unwrap(); // SIGKILL: no flush, no goodbye
    server.wait().unwrap();
    stop.store(true, SeqCst);
    for c in clients {
        c.join().unwrap();
    }
    let (acked, sent) = (acked.load(SeqCst), sent.load(SeqCst));
    assert!(
        acked > 50,
        "only {acked} beacons were acknowledged before the kill"
    );
    let (mut server, _, replayed) = serve_process(&db);
    server.kill().unwrap();
    server.wait().unwrap();
    // Every acknowledged beacon is in the log; a beacon committed but not yet acknowledged
    // when the process died may be there too; none is there twice (sessions are unique).
    assert!(
        acked <= replayed && replayed <= sent,
        "acknowledged {acked}, replayed {replayed}, sent {sent}"
    );
}
