//! Two threads: the collector takes a snapshot every push interval and queues the encoded
//! batch; the sender posts batches to the receiver with retries. The queue is bounded and
//! the collector never waits on it, so a slow or dead receiver costs dropped batches (counted
//! and reported at the end), never a stalled VU or aggregator.

use super::{encode, map_snapshot, stale, WriteRequest};
use crate::error::{Error, Result};
use crate::http::tls::{Tls, TlsOptions};
use crate::live::spec::PromConfig;
use crate::metrics::{Snapshot, SnapshotRequester};
use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender};
use http_body_util::{BodyExt, Full};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Batches waiting for the sender; beyond this the newest is dropped.
const QUEUE: usize = 8;
/// Attempts per batch, with doubling backoff from [`BACKOFF`].
const ATTEMPTS: u32 = 4;
const BACKOFF: Duration = Duration::from_millis(250);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the end of the run waits for the last batches to go out.
const FINAL_WAIT: Duration = Duration::from_secs(30);

#[derive(Default)]
struct Counts {
    sent: AtomicU64,
    dropped: AtomicU64,
    last_error: std::sync::Mutex<Option<String>>,
    /// Set at the end of the run: batches still unsent after this are dropped.
    give_up_at: std::sync::OnceLock<Instant>,
}

pub struct Pusher {
    cfg: PromConfig,
    stop: Sender<()>,
    collector: Option<JoinHandle<Sender<Vec<u8>>>>,
    sender: Option<JoinHandle<()>>,
    counts: Arc<Counts>,
}

impl Pusher {
    pub fn start(cfg: PromConfig, requester: SnapshotRequester) -> Result<Pusher> {
        let target = Target::new(&cfg)?;
        let counts = Arc::new(Counts::default());
        let (queue_tx, queue_rx) = bounded::<Vec<u8>>(QUEUE);
        let (stop, stop_rx) = bounded::<()>(1);
        let sender = {
            let counts = counts.clone();
            std::thread::Builder::new()
                .name("prometheus-rw".into())
                .spawn(move || send_all(target, queue_rx, &counts))
                .map_err(|e| Error::generic(format!("prometheus remote write: {e}")))?
        };
        let collector = {
            let (cfg, counts) = (cfg.clone(), counts.clone());
            std::thread::Builder::new()
                .name("prometheus-rw-collect".into())
                .spawn(move || {
                    while let Err(RecvTimeoutError::Timeout) =
                        stop_rx.recv_timeout(cfg.push_interval)
                    {
                        let Some(snap) = requester.snapshot() else {
                            break;
                        };
                        let body = encode(&map_snapshot(
                            &snap,
                            &cfg.trend_stats,
                            &cfg.labels,
                            now_ms(),
                        ));
                        if queue_tx.try_send(body).is_err() {
                            counts.dropped.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    queue_tx
                })
                .map_err(|e| Error::generic(format!("prometheus remote write: {e}")))?
        };
        Ok(Pusher {
            cfg,
            stop,
            collector: Some(collector),
            sender: Some(sender),
            counts,
        })
    }

    pub fn describe(&self) -> String {
        format!("Prometheus remote write ({})", self.cfg.url)
    }

    /// Pushes the final values (and stale markers if asked), waits for the queue to empty
    /// (at most [`FINAL_WAIT`]) and reports dropped batches.
    pub fn finish(mut self, snap: &Snapshot) {
        let _ = self.stop.send(());
        let queue = self
            .collector
            .take()
            .and_then(|c| c.join().ok())
            .expect("the collector thread returns its queue");
        let at = now_ms();
        let last: WriteRequest = map_snapshot(snap, &self.cfg.trend_stats, &self.cfg.labels, at);
        let deadline = Instant::now() + FINAL_WAIT;
        let mut finals = vec![encode(&last)];
        if self.cfg.stale_markers {
            finals.push(encode(&stale(&last, at + 1)));
        }
        for body in finals {
            if queue.send_timeout(body, deadline - Instant::now()).is_err() {
                self.counts.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
        drop(queue);
        let _ = self.counts.give_up_at.set(deadline);
        if let Some(sender) = self.sender.take() {
            // The sender stops trying at the deadline, so a dead receiver delays the end
            // of the run by at most FINAL_WAIT.
            let _ = sender.join();
        }
        let dropped = self.counts.dropped.load(Ordering::Relaxed);
        let sent = self.counts.sent.load(Ordering::Relaxed);
        if dropped == 0 {
            eprintln!("engine: Prometheus remote write: {sent} batches sent");
        } else {
            let why = self
                .counts
                .last_error
                .lock()
                .expect("error slot")
                .clone()
                .unwrap_or_else(|| "the queue was full".into());
            eprintln!(
                "WARN  Prometheus remote write: {dropped} of {} batches were dropped (last error: {why})",
                dropped + sent
            );
        }
    }
}

fn now_ms() -> i64 {
    (crate::metrics::now_us() / 1000) as i64
}

/// Where batches go and how.
struct Target {
    uri: hyper::Uri,
    host: String,
    port: u16,
    tls: Option<Arc<rustls::ClientConfig>>,
    headers: Vec<(String, String)>,
}

impl Target {
    fn new(cfg: &PromConfig) -> Result<Target> {
        let bad =
            |e: String| Error::config(format!("Prometheus remote write URL {}: {e}", cfg.url));
        let url = url::Url::parse(&cfg.url).map_err(|e| bad(e.to_string()))?;
        let host = url
            .host_str()
            .ok_or_else(|| bad("no host".into()))?
            .to_string();
        let port = url.port_or_known_default().unwrap_or(80);
        let tls = if url.scheme() == "https" {
            let t = Tls::new(TlsOptions {
                insecure_skip_verify: cfg.insecure_skip_tls_verify,
                ..TlsOptions::default()
            })
            .map_err(bad)?;
            let mut c = (*t.config_for(&host).map_err(bad)?).clone();
            // hyper speaks HTTP/1.1 here; do not let the server pick h2.
            c.alpn_protocols = vec![b"http/1.1".to_vec()];
            Some(Arc::new(c))
        } else {
            None
        };
        let mut headers = vec![
            ("Content-Encoding".into(), "snappy".into()),
            ("Content-Type".into(), "application/x-protobuf".into()),
            (
                "User-Agent".into(),
                format!("engine/{}", env!("CARGO_PKG_VERSION")),
            ),
            ("X-Prometheus-Remote-Write-Version".into(), "0.1.0".into()),
        ];
        if let Some((u, p)) = &cfg.basic_auth {
            use base64::Engine;
            let token = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
            headers.push(("Authorization".into(), format!("Basic {token}")));
        }
        headers.extend(cfg.headers.iter().cloned());
        Ok(Target {
            uri: url
                .as_str()
                .parse()
                .map_err(|e: hyper::http::uri::InvalidUri| bad(e.to_string()))?,
            host,
            port,
            tls,
            headers,
        })
    }

    /// One POST on a fresh connection (a push every few seconds does not need a pool).
    async fn post(&self, body: Vec<u8>) -> std::result::Result<(), String> {
        let tcp = tokio::net::TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| format!("connect {}:{}: {e}", self.host, self.port))?;
        let _ = tcp.set_nodelay(true);
        let req = {
            let mut b = hyper::Request::post(self.uri.clone());
            b = b.header("Host", format!("{}:{}", self.host, self.port));
            for (k, v) in &self.headers {
                b = b.header(k.as_str(), v.as_str());
            }
            b.body(Full::new(bytes::Bytes::from(body)))
                .map_err(|e| e.to_string())?
        };
        match &self.tls {
            None => send(hyper_util::rt::TokioIo::new(tcp), req).await,
            Some(cfg) => {
                let name = rustls::pki_types::ServerName::try_from(self.host.clone())
                    .map_err(|e| e.to_string())?;
                let stream = tokio_rustls::TlsConnector::from(cfg.clone())
                    .connect(name, tcp)
                    .await
                    .map_err(|e| format!("TLS: {e}"))?;
                send(hyper_util::rt::TokioIo::new(stream), req).await
            }
        }
    }
}

async fn send<T>(io: T, req: hyper::Request<Full<bytes::Bytes>>) -> std::result::Result<(), String>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut tx, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let res = tx.send_request(req).await.map_err(|e| e.to_string())?;
    let status = res.status();
    let body = res
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    if status.is_success() {
        Ok(())
    } else {
        let text = String::from_utf8_lossy(&body);
        Err(format!("{status}: {}", text.trim()))
    }
}

/// The sender thread: every queued batch, each with up to [`ATTEMPTS`] tries.
fn send_all(target: Target, queue: Receiver<Vec<u8>>, counts: &Counts) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime for remote write");
    rt.block_on(async {
        for body in queue {
            let mut wait = BACKOFF;
            let mut ok = false;
            for attempt in 1..=ATTEMPTS {
                let limit = match counts.give_up_at.get() {
                    Some(&at) if Instant::now() >= at => break,
                    Some(&at) => REQUEST_TIMEOUT.min(at - Instant::now()),
                    None => REQUEST_TIMEOUT,
                };
                let r = tokio::time::timeout(limit, target.post(body.clone()))
                    .await
                    .unwrap_or_else(|_| Err("timed out".into()));
                match r {
                    Ok(()) => {
                        ok = true;
                        break;
                    }
                    // 4xx other than 429: the receiver refuses this batch; retrying won't help.
                    Err(e) if e.starts_with('4') && !e.starts_with("429") => {
                        *counts.last_error.lock().expect("error slot") = Some(e);
                        break;
                    }
                    Err(e) => {
                        *counts.last_error.lock().expect("error slot") = Some(e);
                        if attempt < ATTEMPTS {
                            tokio::time::sleep(wait).await;
                            wait *= 2;
                        }
                    }
                }
            }
            let c = if ok { &counts.sent } else { &counts.dropped };
            c.fetch_add(1, Ordering::Relaxed);
        }
    });
}
