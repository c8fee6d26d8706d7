//! Test helpers: a real HTTP/1.1 server on 127.0.0.1 (random port) that counts what it
//! receives, and a runner for the real `engine` binary.
#![allow(dead_code)]

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request as the server saw it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub query: String,
    pub body: String,
    pub cookie: String,
}

#[derive(Default)]
pub struct Log {
    pub requests: Vec<Seen>,
    pub connections: u64,
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub log: Arc<Mutex<Log>>,
}

impl TestServer {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.log.lock().unwrap().requests.clone()
    }

    pub fn count(&self, path: &str) -> usize {
        self.log
            .lock()
            .unwrap()
            .requests
            .iter()
            .filter(|r| r.path == path)
            .count()
    }

    pub fn connections(&self) -> u64 {
        self.log.lock().unwrap().connections
    }
}

/// How the test server speaks.
#[derive(Clone)]
pub enum Wire {
    Http1,
    /// HTTP/2 without TLS (prior knowledge).
    H2c,
    /// TLS with this config; HTTP/2 when ALPN picks h2.
    Tls(Arc<rustls::ServerConfig>),
}

/// Starts the server on its own thread and runtime; it lives until the test process ends.
pub fn start_server() -> TestServer {
    start_server_with(Wire::Http1)
}

pub fn start_server_with(wire: Wire) -> TestServer {
    let log = Arc::new(Mutex::new(Log::default()));
    let (tx, rx) = std::sync::mpsc::channel();
    let l = log.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                l.lock().unwrap().connections += 1;
                let l = l.clone();
                let wire = wire.clone();
                tokio::spawn(async move {
                    match wire {
                        Wire::Http1 => serve(stream, false, l).await,
                        Wire::H2c => serve(stream, true, l).await,
                        Wire::Tls(cfg) => {
                            let Ok(tls) = tokio_rustls::TlsAcceptor::from(cfg).accept(stream).await
                            else {
                                return; // the client refused our certificate
                            };
                            let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
                            serve(tls, h2, l).await
                        }
                    }
                });
            }
        });
    });
    let addr = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    TestServer { addr, log }
}

async fn serve<S>(io: S, h2: bool, log: Arc<Mutex<Log>>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let svc = service_fn(move |req| handle(req, log.clone()));
    let io = hyper_util::rt::TokioIo::new(io);
    if h2 {
        let _ = hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
            .serve_connection(io, svc)
            .await;
    } else {
        let _ = hyper::server::conn::http1::Builder::new()
            .serve_connection(io, svc)
            .await;
    }
}

fn query_param<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query
        .split('&')
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
}

async fn handle(
    req: Request<hyper::body::Incoming>,
    log: Arc<Mutex<Log>>,
) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let cookie = req
        .headers()
        .get("cookie")
        .map(|v| v.to_str().unwrap_or("").to_string())
        .unwrap_or_default();
    let headers: String = req
        .headers()
        .iter()
        .map(|(k, v)| format!("{k}: {}\n", v.to_str().unwrap_or("?")))
        .collect();
    let body = req.into_body().collect().await?.to_bytes();
    let body = String::from_utf8_lossy(&body).into_owned();
    log.lock().unwrap().requests.push(Seen {
        method,
        path: path.clone(),
        query: query.clone(),
        body: body.clone(),
        cookie: cookie.clone(),
    });
    let mut res = Response::builder().status(200);
    let text: String = match path.as_str() {
        "/slow" => {
            let ms = query_param(&query, "ms")
                .and_then(|v| v.parse().ok())
                .unwrap_or(100);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            "slow".into()
        }
        "/echo" => body,
        "/headers" => headers,
        "/json" => r#"{"a":{"b":[1,2,3]},"name":"x","nothing":null}"#.into(),
        "/csrf" => {
            res = res.header("Set-Cookie", "csrf=tok123; Path=/; HttpOnly");
            r#"{"csrfToken":"tok123"}"#.into()
        }
        "/login" => {
            if cookie.contains("csrf=tok123") && body.contains("csrfToken=tok123") {
                res = res.header("Set-Cookie", "session=s3cr3t; Path=/; HttpOnly");
                "logged in".into()
            } else {
                res = res.status(403);
                "bad csrf".into()
            }
        }
        "/me" => {
            if cookie.contains("session=s3cr3t") {
                "me".into()
            } else {
                res = res.status(401);
                "no session".into()
            }
        }
        "/redirect" => {
            res = res.status(302).header("Location", "/ok");
            String::new()
        }
        p if p.starts_with("/status/") => {
            res = res.status(StatusCode::from_u16(p[8..].parse().unwrap_or(500)).unwrap());
            String::new()
        }
        _ => "ok".into(),
    };
    Ok(res.body(Full::new(Bytes::from(text))).unwrap())
}

/// What a finished `engine run` left behind.
pub struct RunResult {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub summary: serde_json::Value,
}

impl RunResult {
    /// A metric's value from the summary export, e.g. metric("http_reqs", "count").
    pub fn metric(&self, name: &str, field: &str) -> f64 {
        self.summary["metrics"][name][field]
            .as_f64()
            .unwrap_or_else(|| {
                panic!(
                    "no {name}.{field} in {}\nstderr: {}",
                    self.summary, self.stderr
                )
            })
    }

    pub fn check(&self, name: &str) -> (u64, u64) {
        let c = &self.summary["root_group"]["checks"][name];
        (
            c["passes"].as_u64().unwrap_or(0),
            c["fails"].as_u64().unwrap_or(0),
        )
    }

    /// Asserts that each of these top-level checks ran once and passed.
    pub fn assert_passed_once(&self, names: &[&str]) {
        for c in names {
            assert_eq!(self.check(c), (1, 0), "check {c}: {}", self.stderr);
        }
    }
}

/// A temp dir holding scripts for one test.
pub struct Workspace {
    pub dir: tempfile::TempDir,
}

impl Workspace {
    pub fn new() -> Workspace {
        Workspace {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&p, text).unwrap();
        p
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Runs `engine inspect <args>` here and returns its JSON (panics with stderr if it fails).
    pub fn inspect(&self, args: &[&str]) -> serde_json::Value {
        let out = Command::new(env!("CARGO_BIN_EXE_engine"))
            .current_dir(self.dir.path())
            .arg("inspect")
            .args(args)
            .output()
            .expect("engine binary runs");
        assert!(
            out.status.success(),
            "engine inspect {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("inspect prints JSON")
    }

    /// Runs `engine run <script> <args>` quietly with a summary export, and reads it back.
    pub fn run(&self, script: &str, args: &[&str]) -> RunResult {
        self.run_env(script, args, &[])
    }

    /// [`Self::run`] with extra environment variables.
    pub fn run_env(&self, script: &str, args: &[&str], env: &[(&str, &str)]) -> RunResult {
        let export = self.dir.path().join("summary.json");
        let _ = std::fs::remove_file(&export);
        let out = Command::new(env!("CARGO_BIN_EXE_engine"))
            .current_dir(self.dir.path())
            .envs(env.iter().copied())
            .arg("run")
            .arg("-q")
            .arg("--summary-export")
            .arg(&export)
            .args(args)
            .arg(script)
            .output()
            .expect("engine binary runs");
        let summary = std::fs::read_to_string(&export)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or(serde_json::Value::Null);
        RunResult {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            summary,
        }
    }
}

/// Counts per (method, path) of what the server saw.
pub fn histogram(reqs: &[Seen]) -> BTreeMap<(String, String), usize> {
    let mut m = BTreeMap::new();
    for r in reqs {
        *m.entry((r.method.clone(), r.path.clone())).or_default() += 1;
    }
    m
}
